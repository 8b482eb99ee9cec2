package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// warnEvery spaces the warnings about failing upstreams: when the host's
// resolver is down every container query fails, and one line says it.
const warnEvery = 30 * time.Second

// forwarder sends names outside the cluster to the host's resolvers.
type forwarder struct {
	// upstreams is set by New and trimmed once by Start before any query
	// is served; read-only after that.
	upstreams []string
	udp, tcp  *mdns.Client
	log       *slog.Logger
	lastWarn  atomic.Int64
}

func newForwarder(upstreams []string, timeout time.Duration, log *slog.Logger) *forwarder {
	return &forwarder{
		upstreams: upstreams,
		udp:       &mdns.Client{Net: "udp", Timeout: timeout, UDPSize: mdns.DefaultMsgSize},
		tcp:       &mdns.Client{Net: "tcp", Timeout: timeout},
		log:       log,
	}
}

// exchange asks each upstream in turn and returns the first real answer
// (NXDOMAIN is one; SERVFAIL and REFUSED are not: the next upstream may do
// better). Over UDP first, and over TCP when the answer was truncated.
func (f *forwarder) exchange(ctx context.Context, req *mdns.Msg) (*mdns.Msg, error) {
	if len(f.upstreams) == 0 {
		return nil, errors.New("no upstream resolver configured")
	}
	var errs []error
	for _, up := range f.upstreams {
		resp, err := f.try(ctx, f.udp, req, up)
		if err == nil && resp.Truncated {
			resp, err = f.try(ctx, f.tcp, req, up)
		}
		if err == nil && (resp.Rcode == mdns.RcodeServerFailure || resp.Rcode == mdns.RcodeRefused) {
			err = fmt.Errorf("answered %s", mdns.RcodeToString[resp.Rcode])
		}
		if err == nil {
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("upstream %s: %w", up, err))
		if ctx.Err() != nil {
			break
		}
	}
	err := errors.Join(errs...)
	f.warn(req, err)
	return nil, err
}

// try is one exchange that also ends when ctx does (the server closing),
// which the client alone only honours for deadlines.
func (f *forwarder) try(ctx context.Context, c *mdns.Client, req *mdns.Msg, up string) (*mdns.Msg, error) {
	conn, err := c.DialContext(ctx, up)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, req, conn)
	return resp, err
}

func (f *forwarder) warn(req *mdns.Msg, err error) {
	now := time.Now().UnixNano()
	last := f.lastWarn.Load()
	if now-last < int64(warnEvery) || !f.lastWarn.CompareAndSwap(last, now) {
		f.log.Debug("dns forward failed", "dns.name", req.Question[0].Name, "err", err)
		return
	}
	f.log.Warn("dns: no upstream resolver answered; containers cannot resolve names outside the cluster "+
		"(check the host's resolvers in resolv.conf)", "dns.name", req.Question[0].Name, "err", err)
}

// dropLoops removes every upstream that is this server itself: a query
// forwarded there would come back to be forwarded again.
func (f *forwarder) dropLoops(own []net.Addr) {
	var kept []string
	for _, up := range f.upstreams {
		if isOwn(netip.MustParseAddrPort(up), own) {
			f.log.Warn("dns: ignoring upstream resolver that is this server itself (it would loop)",
				"dns.upstream", up)
			continue
		}
		kept = append(kept, up)
	}
	f.upstreams = kept
}

func isOwn(up netip.AddrPort, own []net.Addr) bool {
	upIP := up.Addr().Unmap()
	for _, a := range own {
		ua, ok := a.(*net.UDPAddr)
		if !ok || ua.Port != int(up.Port()) {
			continue
		}
		ip, _ := netip.AddrFromSlice(ua.IP)
		ip = ip.Unmap()
		if ip == upIP {
			return true
		}
		// Listening on every address: any of this host's own is us.
		if ip.IsUnspecified() && (upIP.IsLoopback() || isLocal(upIP)) {
			return true
		}
	}
	return false
}

func isLocal(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if la, ok := netip.AddrFromSlice(n.IP); ok && la.Unmap() == ip {
				return true
			}
		}
	}
	return false
}
