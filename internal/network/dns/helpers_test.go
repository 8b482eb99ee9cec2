package dns

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// quietLogger drops the server's messages unless a test runs with -v.
func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer starts a server on a free loopback port and returns its
// "ip:port"; it is closed when the test ends.
func startServer(t testing.TB, cfg Config) string {
	t.Helper()
	if cfg.Addrs == nil {
		cfg.Addrs = []string{"127.0.0.1:0"}
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s.Addrs()[0].String()
}

// query asks addr over network ("udp" or "tcp") for name and type.
func query(t testing.TB, network, addr, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg).SetQuestion(name, qtype)
	c := &mdns.Client{Net: network, Timeout: 10 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, mdns.TypeToString[qtype], network, err)
	}
	return resp
}

// addrsOf lists the A and AAAA addresses of an answer, in order.
func addrsOf(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *mdns.A:
			out = append(out, rr.A.String())
		case *mdns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	return out
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// upstream is a fake resolver on loopback (UDP and TCP on one port). It
// answers A queries for its names (NXDOMAIN for any other) and counts
// the queries it gets.
type upstream struct {
	addr    string
	queries atomic.Int64
	names   map[string][]string // lower-case FQDN -> addresses
	// truncUDP makes UDP answers with more than one record come back
	// truncated, as a real server's would when they do not fit.
	truncUDP atomic.Bool
	stop     func()
}

func startUpstream(t testing.TB, names map[string][]string) *upstream {
	t.Helper()
	pc, l, err := listenPair("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveUpstream(t, pc, l, names)
}

// serveUpstream serves a fake upstream on pc and l.
func serveUpstream(t testing.TB, pc net.PacketConn, l net.Listener, names map[string][]string) *upstream {
	t.Helper()
	u := &upstream{names: names}
	u.addr = pc.LocalAddr().String()
	udp := &mdns.Server{PacketConn: pc, Handler: u}
	tcp := &mdns.Server{Listener: l, Handler: u}
	for _, srv := range []*mdns.Server{udp, tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
	var stopped atomic.Bool
	u.stop = func() {
		if stopped.CompareAndSwap(false, true) {
			_ = udp.Shutdown()
			_ = tcp.Shutdown()
		}
	}
	t.Cleanup(u.stop)
	return u
}

func (u *upstream) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	u.queries.Add(1)
	resp := new(mdns.Msg).SetReply(req)
	resp.RecursionAvailable = true
	q := req.Question[0]
	ips, ok := u.names[normalize(q.Name)+"."]
	if !ok {
		resp.Rcode = mdns.RcodeNameError
	}
	if q.Qtype == mdns.TypeA {
		for _, ip := range ips {
			resp.Answer = append(resp.Answer, &mdns.A{
				Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60},
				A:   net.ParseIP(ip),
			})
		}
	}
	if _, isUDP := w.RemoteAddr().(*net.UDPAddr); isUDP && u.truncUDP.Load() && len(resp.Answer) > 1 {
		resp.Answer, resp.Truncated = resp.Answer[:1], true
	}
	_ = w.WriteMsg(resp)
}

// deadAddr is a loopback UDP address where nothing listens: a query sent
// there is refused at once.
func deadAddr(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}
