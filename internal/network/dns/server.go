// Package dns is the DNS server embedded in every Warren node. It listens
// on the node's bridge gateway address, which every container has as its
// nameserver; it answers cluster names (NAME, NAME.warren, tasks.NAME)
// from a Table the node's network controller keeps current, and forwards
// every other name to the host's own resolvers.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// Defaults for the zero fields of Config.
const (
	DefaultDomain     = "warren"
	DefaultResolvConf = "/etc/resolv.conf"
	DefaultTTL        = 2
	DefaultTimeout    = 2 * time.Second
)

// Config says where the server listens and what it answers.
type Config struct {
	// Addrs are the "ip:port" addresses to serve on, UDP and TCP on each;
	// normally the bridge gateway's port 53. Port 0 takes a free port
	// (the same one for UDP and TCP), for tests.
	Addrs []string
	// Table holds the cluster names; required.
	Table *Table
	// Domain is the cluster's own zone (DefaultDomain). Names under it are
	// answered here alone and never forwarded.
	Domain string
	// Upstreams are the "ip:port" resolvers other names go to, tried in
	// order. Empty: the nameservers of ResolvConf.
	Upstreams []string
	// ResolvConf is read for upstreams when Upstreams is empty
	// (DefaultResolvConf).
	ResolvConf string
	// TTL is the time to live, in seconds, of cluster answers and of
	// their negative answers (DefaultTTL). Kept short so that a resolver
	// cache never holds a task that has gone.
	TTL uint32
	// Timeout bounds each try of each upstream (DefaultTimeout).
	Timeout time.Duration
	// Logger gets the server's messages (slog.Default()).
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Domain = strings.Trim(strings.ToLower(c.Domain), ".")
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	if c.ResolvConf == "" {
		c.ResolvConf = DefaultResolvConf
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server is the embedded DNS server. New, then Start, then Close.
type Server struct {
	cfg Config
	log *slog.Logger
	fwd *forwarder
	// ctx ends with Close, so that forwards in flight give up at once
	// instead of holding Close for their timeouts.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	started bool
	closed  bool
	servers []*mdns.Server
	addrs   []net.Addr
	done    sync.WaitGroup
}

// New checks cfg and reads the upstream resolvers; it does not listen yet.
// A resolv.conf that cannot be read is an error; one with no usable
// nameserver is not (cluster names still work): the server then logs a
// warning and answers SERVFAIL for every name it would forward.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.Table == nil {
		return nil, errors.New("dns: Config.Table is nil: the server needs a table of cluster names")
	}
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("dns: Config.Addrs is empty: give the bridge gateway address to listen on, e.g. 10.200.3.1:53")
	}
	for _, a := range cfg.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("dns: listen address %q: want ip:port: %w", a, err)
		}
	}
	log := cfg.Logger.With("module", "dns")
	upstreams, err := upstreamsOf(cfg, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:    cfg,
		log:    log,
		fwd:    newForwarder(upstreams, cfg.Timeout, log),
		ctx:    ctx,
		cancel: cancel,
	}, nil
}

// Start binds UDP and TCP on every address and serves each in its own
// goroutine. If any address cannot be bound, nothing is left listening
// and the error names the address.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("dns: Start called twice, or after Close")
	}
	var pcs []net.PacketConn
	var ls []net.Listener
	for _, addr := range s.cfg.Addrs {
		pc, l, err := listenPair(addr)
		if err != nil {
			closeAll(pcs, ls)
			return err
		}
		pcs, ls = append(pcs, pc), append(ls, l)
	}
	s.started = true
	for i := range pcs {
		s.addrs = append(s.addrs, pcs[i].LocalAddr())
	}
	// Only now are our own addresses known (port 0): drop any upstream
	// that is us, or a forwarded query would come straight back.
	s.fwd.dropLoops(s.addrs)
	for i := range pcs {
		s.serve(&mdns.Server{PacketConn: pcs[i], UDPSize: mdns.DefaultMsgSize})
		s.serve(&mdns.Server{Listener: ls[i]})
	}
	s.log.Info("dns server listening", "dns.addrs", s.cfg.Addrs, "dns.domain", s.cfg.Domain,
		"dns.upstreams", s.fwd.upstreams)
	return nil
}

// serve runs srv in a goroutine and returns once it accepts queries (or
// has failed), so that Close never races with its start.
func (s *Server) serve(srv *mdns.Server) {
	srv.Handler = &handler{
		ctx: s.ctx, table: s.cfg.Table, zone: s.cfg.Domain + ".", ttl: s.cfg.TTL, fwd: s.fwd, log: s.log,
	}
	started, exited := make(chan struct{}), make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		defer close(exited)
		if err := srv.ActivateAndServe(); err != nil {
			s.log.Error("dns server stopped: containers on this node cannot resolve names",
				"dns.addr", localAddr(srv), "err", err)
		}
	}()
	select {
	case <-started:
		s.servers = append(s.servers, srv)
	case <-exited:
	}
}

// Addrs returns the UDP addresses actually bound, in the order of
// Config.Addrs (TCP uses the same ports). Empty before Start.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

// Close stops serving and releases every address. Queries being answered
// get up to a few seconds to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	servers := s.servers
	s.mu.Unlock()
	s.cancel()
	var errs []error
	for _, srv := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := srv.ShutdownContext(ctx)
		cancel()
		if err != nil {
			errs = append(errs, err)
		}
	}
	s.done.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dns: close: %w", err)
	}
	return nil
}
