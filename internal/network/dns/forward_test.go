package dns

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestForward(t *testing.T) {
	up := startUpstream(t, map[string][]string{
		"example.test.": {"192.0.2.1"},
		"host.":         {"192.0.2.2"},
	})
	addr := startServer(t, Config{Table: clusterTable(), Upstreams: []string{up.addr}})
	tests := []struct {
		name  string
		rcode int
		want  []string
	}{
		{"example.test.", mdns.RcodeSuccess, []string{"192.0.2.1"}},
		{"EXAMPLE.test.", mdns.RcodeSuccess, []string{"192.0.2.1"}},
		{"host.", mdns.RcodeSuccess, []string{"192.0.2.2"}}, // single label, not a service
		{"nope.test.", mdns.RcodeNameError, nil},            // the upstream's NXDOMAIN, passed on
		{"tasks.nope.", mdns.RcodeNameError, nil},           // not a service: not ours to answer
	}
	for _, tt := range tests {
		resp := query(t, "udp", addr, tt.name, mdns.TypeA)
		if resp.Rcode != tt.rcode || !slices.Equal(addrsOf(resp), tt.want) {
			t.Errorf("%s: %s %v, want %s %v", tt.name, mdns.RcodeToString[resp.Rcode], addrsOf(resp),
				mdns.RcodeToString[tt.rcode], tt.want)
		}
		if resp.Authoritative {
			t.Errorf("%s: forwarded answer has AA set", tt.name)
		}
	}
	if n := up.queries.Load(); n != int64(len(tests)) {
		t.Errorf("upstream got %d queries, want %d", n, len(tests))
	}
}

func TestForwardTriesEachUpstreamInOrder(t *testing.T) {
	up := startUpstream(t, map[string][]string{"example.test.": {"192.0.2.1"}})
	addr := startServer(t, Config{Table: NewTable(), Upstreams: []string{deadAddr(t), up.addr}})
	resp := query(t, "udp", addr, "example.test.", mdns.TypeA)
	if got := addrsOf(resp); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("first upstream down: got %s %v, want the second's answer", mdns.RcodeToString[resp.Rcode], got)
	}
}

func TestServfailWhenUpstreamDown(t *testing.T) {
	up := startUpstream(t, map[string][]string{"example.test.": {"192.0.2.1"}})
	addr := startServer(t, Config{Table: clusterTable(), Upstreams: []string{up.addr}})
	if resp := query(t, "udp", addr, "example.test.", mdns.TypeA); resp.Rcode != mdns.RcodeSuccess {
		t.Fatalf("upstream up: rcode %s", mdns.RcodeToString[resp.Rcode])
	}
	up.stop()
	resp := query(t, "udp", addr, "example.test.", mdns.TypeA)
	if resp.Rcode != mdns.RcodeServerFailure || !resp.RecursionAvailable {
		t.Errorf("upstream down: rcode %s RA=%v, want SERVFAIL with RA", mdns.RcodeToString[resp.Rcode], resp.RecursionAvailable)
	}
	// Cluster names do not depend on the upstream.
	if got := addrsOf(query(t, "udp", addr, "web.", mdns.TypeA)); !slices.Equal(got, []string{"10.201.0.5"}) {
		t.Errorf("cluster name with upstream down: %v", got)
	}
}

func TestForwardRetriesTruncatedOverTCP(t *testing.T) {
	up := startUpstream(t, map[string][]string{"many.test.": {"192.0.2.1", "192.0.2.2", "192.0.2.3"}})
	up.truncUDP.Store(true)
	addr := startServer(t, Config{Table: NewTable(), Upstreams: []string{up.addr}})
	for _, network := range []string{"udp", "tcp"} {
		resp := query(t, network, addr, "many.test.", mdns.TypeA)
		if got := addrsOf(resp); len(got) != 3 || resp.Truncated {
			t.Errorf("over %s: TC=%v %v, want all 3 addresses (fetched over TCP upstream)", network, resp.Truncated, got)
		}
	}
}

func TestNeverForwardsToItself(t *testing.T) {
	// A fixed free port so the upstream list can name this very server.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	self := pc.LocalAddr().String()
	pc.Close()
	addr := startServer(t, Config{Addrs: []string{self}, Table: NewTable(), Upstreams: []string{self}})
	resp := query(t, "udp", addr, "example.test.", mdns.TypeA)
	if resp.Rcode != mdns.RcodeServerFailure {
		t.Errorf("only upstream is itself: rcode %s, want SERVFAIL (and no loop)", mdns.RcodeToString[resp.Rcode])
	}
}

func TestIsOwn(t *testing.T) {
	own := func(s string) []net.Addr { return []net.Addr{net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s))} }
	tests := []struct {
		up, own string
		want    bool
	}{
		{"10.200.3.1:53", "10.200.3.1:53", true},
		{"10.200.3.1:5353", "10.200.3.1:53", false},
		{"10.200.3.2:53", "10.200.3.1:53", false},
		{"127.0.0.53:53", "10.200.3.1:53", false}, // systemd-resolved: kept
		{"127.0.0.53:53", "0.0.0.0:53", true},     // every address is ours
		{"192.0.2.1:53", "0.0.0.0:53", false},
	}
	for _, tt := range tests {
		if got := isOwn(netip.MustParseAddrPort(tt.up), own(tt.own)); got != tt.want {
			t.Errorf("isOwn(%s, %s) = %v, want %v", tt.up, tt.own, got, tt.want)
		}
	}
}

// Close does not wait for forwards in flight to time out.
func TestCloseAbortsForwards(t *testing.T) {
	// An upstream that reads queries and never answers.
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	got := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 512)
		if _, _, err := hole.ReadFrom(buf); err == nil {
			got <- struct{}{}
		}
	}()
	s, err := New(Config{
		Addrs: []string{"127.0.0.1:0"}, Table: NewTable(), Upstreams: []string{hole.LocalAddr().String()},
		Timeout: time.Minute, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c := &mdns.Client{Timeout: time.Minute}
	go func() {
		_, _, _ = c.Exchange(new(mdns.Msg).SetQuestion("example.test.", mdns.TypeA), s.Addrs()[0].String())
	}()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the query never reached the upstream")
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close waited for a forward with a one-minute timeout")
	}
}
