// Package client is the Go client of Warren's Control API, shared by the
// CLI and by programs that drive a cluster. It adds to the generated
// api.ControlClient what every caller would otherwise write again: finding
// the managers (WARREN_HOST, mutual TLS from a certificate directory),
// failing over between them when one is down, errors a person can act on,
// failing fast when no manager answers, and waiting for a service to
// converge.
package client

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-project/warren/api"
)

const (
	// DefaultHost is where a manager's root-only API socket lives.
	DefaultHost = "unix:///run/warren/warren.sock"
	// DefaultPort is the manager's API port, used when a tcp host has none.
	DefaultPort = "2377"
	// HostEnv and TLSDirEnv name the environment variables that choose the
	// manager and the certificate directory when no option does.
	HostEnv   = "WARREN_HOST"
	TLSDirEnv = "WARREN_TLS_DIR"

	defaultCallTimeout    = 30 * time.Second
	defaultConnectTimeout = 5 * time.Second
	defaultPollWait       = 30 * time.Second
)

// Client talks to the managers of one cluster. Call the embedded
// api.ControlClient's methods directly; their errors are already translated
// (see Error).
//
// A unary call goes to the manager that answered last. When that one is
// unreachable, or answers Unavailable (it lost the quorum, say), the call is
// tried once on each other manager in turn, and the client sticks to the
// first that answers; a write that may have reached a manager before it
// broke is not tried again (see mayRetry). A stream (Logs, Exec, ImportImage) starts on the first
// manager that accepts it and is never moved: its end is the caller's to
// handle.
//
// After its first successful call over tcp, the client asks that manager
// for the cluster's managers (GetClusterInfo's manager_addrs, once per
// Client) and fails over to them too; WithManagersFile keeps them for the
// next process.
type Client struct {
	api.ControlClient

	cfg    config
	tlsDir string      // where the certificates came from, for error messages
	tls    *tls.Config // the admin bundle; nil without tcp hosts
	known  []string    // the managers read from cfg.managersFile

	mu      sync.Mutex
	hosts   []*host // given first (unix sockets first), then learnt
	cur     *host   // the manager that answered last
	all     []*host // every host ever used, to close
	learned bool    // the managers were asked for (or need not be)
	closed  bool
}

type config struct {
	hosts          []string
	tlsDir         string
	managersFile   string
	callTimeout    time.Duration
	connectTimeout time.Duration
	pollWait       time.Duration
	logger         *slog.Logger
	dialOpts       []grpc.DialOption
}

// Option configures New.
type Option func(*config)

// WithHosts adds managers to try after those of New's host argument, in
// order. Each may be a comma-separated list, as in -H.
func WithHosts(hosts ...string) Option {
	return func(c *config) { c.hosts = append(c.hosts, hosts...) }
}

// WithTLSDir names the directory holding ca.crt, client.crt and client.key
// for a tcp:// host. Empty means $WARREN_TLS_DIR, else ~/.warren/tls.
func WithTLSDir(dir string) Option { return func(c *config) { c.tlsDir = dir } }

// WithManagersFile keeps the managers the client learns in path (see
// DefaultManagersFile), under the TLS directory's name, and tries the ones
// kept there after the given hosts: a later client can then fail over even
// when every host it was given is down. A corrupt file is ignored with a
// warning and replaced at the next learning. It applies only when a tcp
// host is given, since learnt managers are reached over tcp.
func WithManagersFile(path string) Option { return func(c *config) { c.managersFile = path } }

// WithCallTimeout bounds each attempt of a unary call whose context has no
// deadline (default 30s). A blocking ListTasks gets its wait on top.
func WithCallTimeout(d time.Duration) Option { return func(c *config) { c.callTimeout = d } }

// WithConnectTimeout bounds one attempt to connect (default 5s).
func WithConnectTimeout(d time.Duration) Option { return func(c *config) { c.connectTimeout = d } }

// WithPollWait is how long one blocking ListTasks of WaitForService may
// wait on the server before it asks again (default 30s).
func WithPollWait(d time.Duration) Option { return func(c *config) { c.pollWait = d } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithDialOptions adds gRPC dial options, after the client's own, to the
// connection of every manager.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOpts = append(c.dialOpts, opts...) }
}

// New returns a client of the managers at host: "unix:///path" or
// "tcp://host:port", or several separated by commas (more with WithHosts).
// None means $WARREN_HOST, else DefaultHost. A unix socket, the local
// manager, is tried first. New does not connect: the first call does, and
// fails within the connect timeout per manager when none answers. Over tcp
// it uses mutual TLS; a missing certificate is an error here.
func New(host string, opts ...Option) (*Client, error) {
	cfg := config{callTimeout: defaultCallTimeout, connectTimeout: defaultConnectTimeout, pollWait: defaultPollWait}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	cfg.logger = cfg.logger.With("module", "client")
	eps, err := resolveHosts([]string{host}, cfg.hosts)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg}
	if err := c.loadTLS(eps); err != nil {
		return nil, err
	}
	for _, ep := range eps {
		h, err := c.newHost(ep, false)
		if err != nil {
			c.closeAll()
			return nil, err
		}
		c.hosts = append(c.hosts, h)
	}
	c.cur = c.hosts[0]
	c.learned = c.tls == nil // nothing to learn without tcp
	if c.tls != nil && cfg.managersFile != "" {
		c.known = loadManagers(cfg.managersFile, c.tlsDir, cfg.logger)
		c.addLearnt(c.known)
	}
	c.ControlClient = api.NewControlClient(router{c})
	cfg.logger.Debug("client created", "hosts", c.Hosts())
	return c, nil
}

// loadTLS reads the admin bundle when a host is tcp.
func (c *Client) loadTLS(eps []endpoint) error {
	var tcp []string
	for _, ep := range eps {
		if ep.network == "tcp" {
			tcp = append(tcp, ep.String())
		}
	}
	if len(tcp) == 0 {
		return nil
	}
	if c.cfg.tlsDir == "" {
		c.cfg.tlsDir = DefaultTLSDir()
	}
	c.tlsDir = c.cfg.tlsDir
	cfg, err := loadTLS(c.tlsDir)
	if err != nil {
		return fmt.Errorf("cannot use mutual TLS for %s: %w", strings.Join(tcp, ", "), err)
	}
	c.tls = cfg
	return nil
}

// Host is the address of the manager the client uses now (the one that
// answered last, else the first one), with its scheme.
func (c *Client) Host() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur.ep.String()
}

// Hosts are the managers the client knows, with their schemes, in the
// order a client that knows nothing of them would try them: the given hosts
// first, then the learnt ones.
func (c *Client) Hosts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.hosts))
	for i, h := range c.hosts {
		out[i] = h.ep.String()
	}
	return out
}

// Close releases the connections; calls after it fail.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.closeAll()
}
