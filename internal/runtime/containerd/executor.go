// Package containerd is the runtime.Executor that runs containers through a
// containerd daemon (checked against Debian's containerd 1.6.20 with runc
// 1.1.5 and the io.containerd.runc.v2 shim, on cgroup v1), and a Supervisor
// that runs a containerd of Warren's own when the node has none.
//
// Containers outlive the Executor and the daemon: their shims keep them
// running and write their logs, and a later Executor adopts them (Inspect,
// Wait, Stop work on containers started by an earlier process).
package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/warren-project/warren/internal/runtime"
)

// Config configures an Executor.
type Config struct {
	Address     string        // containerd socket; default /run/containerd/containerd.sock
	Namespace   string        // containerd namespace of Warren's images and containers; default "warren"
	Snapshotter string        // default "overlayfs"
	Runtime     string        // shim; default "io.containerd.runc.v2"
	DialTimeout time.Duration // how long New waits for containerd to answer; default 10s
	Logger      *slog.Logger  // default slog.Default()
	// LogDriver is the absolute path of the program the shims run to write
	// container logs: the warren binary (`warren log-driver`). Default:
	// this program.
	LogDriver string
}

// DefaultConfig returns the configuration for the system containerd.
func DefaultConfig() Config {
	return Config{
		Address:     defaults.DefaultAddress,
		Namespace:   "warren",
		Snapshotter: defaults.DefaultSnapshotter,
		Runtime:     defaults.DefaultRuntime,
		DialTimeout: 10 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Address == "" {
		c.Address = d.Address
	}
	if c.Namespace == "" {
		c.Namespace = d.Namespace
	}
	if c.Snapshotter == "" {
		c.Snapshotter = d.Snapshotter
	}
	if c.Runtime == "" {
		c.Runtime = d.Runtime
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Executor is the containerd runtime.Executor.
type Executor struct {
	cfg    Config
	client *client.Client
	log    *slog.Logger
}

var _ runtime.Executor = (*Executor)(nil)

// New connects to containerd at cfg.Address and checks that it answers
// within cfg.DialTimeout.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	cfg = cfg.withDefaults()
	if cfg.LogDriver == "" {
		exe, err := defaultLogDriver()
		if err != nil {
			return nil, err
		}
		cfg.LogDriver = exe
	}
	c, err := client.New(cfg.Address,
		client.WithDefaultNamespace(cfg.Namespace),
		client.WithDefaultRuntime(cfg.Runtime),
		client.WithTimeout(cfg.DialTimeout))
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w", cfg.Address, err)
	}
	if _, err := waitVersion(ctx, c, cfg.DialTimeout); err != nil {
		c.Close()
		hint := ""
		if _, serr := os.Stat(cfg.Address); serr != nil {
			hint = " (no socket file: is containerd running?)"
		}
		return nil, fmt.Errorf("containerd at %s did not answer within %s%s: %w", cfg.Address, cfg.DialTimeout, hint, err)
	}
	return &Executor{cfg: cfg, client: c, log: cfg.Logger.With("module", "runtime.containerd")}, nil
}

// waitVersion asks the daemon its version until it answers or timeout passes.
func waitVersion(ctx context.Context, c *client.Client, timeout time.Duration) (client.Version, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := c.Version(ctx)
		if err == nil {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return client.Version{}, errors.Join(ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// Reachable tells whether a containerd daemon answers at address.
func Reachable(ctx context.Context, address string) bool {
	if _, err := os.Stat(address); err != nil {
		return false
	}
	c, err := client.New(address, client.WithTimeout(2*time.Second))
	if err != nil {
		return false
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Version(ctx)
	return err == nil
}

// Config returns the configuration in force, defaults filled in.
func (e *Executor) Config() Config { return e.cfg }

// Client returns the containerd client, for tools and tests; use it with a
// context from WithNamespace.
func (e *Executor) Client() *client.Client { return e.client }

// WithNamespace returns ctx in the executor's containerd namespace.
func (e *Executor) WithNamespace(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, e.cfg.Namespace)
}

// Close closes the connection; containers keep running.
func (e *Executor) Close() error { return e.client.Close() }

// NormalizeRef returns the fully qualified form of ref (see runtime.NormalizeRef).
func (e *Executor) NormalizeRef(ref string) (string, error) { return runtime.NormalizeRef(ref) }
