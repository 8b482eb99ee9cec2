// Package client is the Go client of Warren's Control API, shared by the
// CLI and by programs that drive a cluster. It adds to the generated
// api.ControlClient what every caller would otherwise write again: finding
// the manager (WARREN_HOST, mutual TLS from a certificate directory), errors
// a person can act on, failing fast when no manager answers, and waiting for
// a service to converge.
package client

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

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

// Client talks to one manager. Call the embedded api.ControlClient's
// methods directly; their errors are already translated (see Error).
type Client struct {
	api.ControlClient

	conn   *grpc.ClientConn
	host   string
	tlsDir string // where the certificates came from, for error messages
	cfg    config
}

type config struct {
	tlsDir         string
	callTimeout    time.Duration
	connectTimeout time.Duration
	pollWait       time.Duration
	logger         *slog.Logger
	dialOpts       []grpc.DialOption
}

// Option configures New.
type Option func(*config)

// WithTLSDir names the directory holding ca.crt, client.crt and client.key
// for a tcp:// host. Empty means $WARREN_TLS_DIR, else ~/.warren/tls.
func WithTLSDir(dir string) Option { return func(c *config) { c.tlsDir = dir } }

// WithCallTimeout bounds each unary call whose context has no deadline
// (default 30s). A blocking ListTasks gets its wait on top.
func WithCallTimeout(d time.Duration) Option { return func(c *config) { c.callTimeout = d } }

// WithConnectTimeout bounds one attempt to connect (default 5s).
func WithConnectTimeout(d time.Duration) Option { return func(c *config) { c.connectTimeout = d } }

// WithPollWait is how long one blocking ListTasks of WaitForService may
// wait on the server before it asks again (default 30s).
func WithPollWait(d time.Duration) Option { return func(c *config) { c.pollWait = d } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithDialOptions adds gRPC dial options, after the client's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOpts = append(c.dialOpts, opts...) }
}

// New returns a client of the manager at host: "unix:///path" or
// "tcp://host:port". Empty means $WARREN_HOST, else DefaultHost. It does not
// connect: the first call does, and fails within the connect timeout when
// no manager answers. Over tcp it uses mutual TLS; a missing certificate is
// an error here.
func New(host string, opts ...Option) (*Client, error) {
	cfg := config{callTimeout: defaultCallTimeout, connectTimeout: defaultConnectTimeout, pollWait: defaultPollWait}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	cfg.logger = cfg.logger.With("module", "client")
	if host == "" {
		host = os.Getenv(HostEnv)
	}
	if host == "" {
		host = DefaultHost
	}
	ep, err := parseHost(host)
	if err != nil {
		return nil, err
	}
	if ep.network == "tcp" && cfg.tlsDir == "" {
		cfg.tlsDir = DefaultTLSDir()
	}
	creds, err := ep.credentials(&cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{host: ep.String(), tlsDir: cfg.tlsDir, cfg: cfg}
	dialOpts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: cfg.connectTimeout}),
		// Fail a call at once when the manager is unreachable, instead of
		// waiting for it to appear: a CLI user wants to know now.
		grpc.WithDefaultCallOptions(grpc.WaitForReady(false)),
		grpc.WithChainUnaryInterceptor(c.unaryInterceptor),
		grpc.WithChainStreamInterceptor(c.streamInterceptor),
	}, cfg.dialOpts...)
	conn, err := grpc.NewClient(ep.target(), dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("cannot use Warren manager address %s: %w", ep, err)
	}
	c.conn = conn
	c.ControlClient = api.NewControlClient(conn)
	cfg.logger.Debug("client created", "host", c.host)
	return c, nil
}

// Host is the manager's address as the client uses it, with its scheme.
func (c *Client) Host() string { return c.host }

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

// endpoint is a parsed host.
type endpoint struct {
	network string // "unix" or "tcp"
	addr    string // socket path, or host:port
}

func (e endpoint) String() string {
	if e.network == "unix" {
		return "unix://" + e.addr
	}
	return "tcp://" + e.addr
}

func (e endpoint) target() string {
	if e.network == "unix" {
		return "unix://" + e.addr
	}
	// passthrough hands host:port to the dialer as it is, so the name is
	// resolved by the system resolver at each connect.
	return "passthrough:///" + e.addr
}

func (e endpoint) credentials(cfg *config) (credentials.TransportCredentials, error) {
	if e.network == "unix" {
		// The socket is root-only: file permissions are its authentication.
		return insecure.NewCredentials(), nil
	}
	hostname, _, _ := net.SplitHostPort(e.addr)
	tlsCfg, err := loadTLS(cfg.tlsDir, hostname)
	if err != nil {
		return nil, fmt.Errorf("cannot use mutual TLS for %s: %w", e, err)
	}
	return credentials.NewTLS(tlsCfg), nil
}

// DefaultTLSDir is $WARREN_TLS_DIR, else ~/.warren/tls.
func DefaultTLSDir() string {
	if d := os.Getenv(TLSDirEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".warren", "tls")
}

func parseHost(host string) (endpoint, error) {
	bad := func(why string) (endpoint, error) {
		return endpoint{}, fmt.Errorf("invalid Warren host %q: %s; use unix:///path/to/warren.sock or tcp://HOST:PORT", host, why)
	}
	scheme, rest, ok := strings.Cut(host, "://")
	if !ok {
		// Forgive a bare path or host:port: the meaning is plain.
		scheme, rest = "tcp", host
		if strings.HasPrefix(host, "/") {
			scheme = "unix"
		}
	}
	switch scheme {
	case "unix":
		if !strings.HasPrefix(rest, "/") {
			return bad("the socket path must be absolute")
		}
		return endpoint{network: "unix", addr: rest}, nil
	case "tcp":
		rest = strings.TrimSuffix(rest, "/")
		if rest == "" || strings.Contains(rest, "/") {
			return bad("expected HOST:PORT after tcp://")
		}
		if _, _, err := net.SplitHostPort(rest); err != nil {
			rest = net.JoinHostPort(strings.Trim(rest, "[]"), DefaultPort)
		}
		return endpoint{network: "tcp", addr: rest}, nil
	}
	return bad("unknown scheme " + scheme)
}

// callTimeout is the deadline for one unary call: the configured timeout,
// plus the server-side wait of a blocking query.
func (c *Client) callTimeout(req any) time.Duration {
	d := c.cfg.callTimeout
	if r, ok := req.(*api.ListTasksRequest); ok && r.GetWait() != nil {
		d += r.GetWait().AsDuration()
	}
	return d
}

func (c *Client) unaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if _, ok := ctx.Deadline(); !ok && c.cfg.callTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.callTimeout(req))
		defer cancel()
	}
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err != nil {
		c.cfg.logger.Debug("call failed", "method", method, "err", err)
	}
	return c.translate(err)
}

// streamInterceptor translates the error of opening a stream; ImportImage
// translates the errors of its sends and receives itself.
func (c *Client) streamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	return s, c.translate(err)
}
