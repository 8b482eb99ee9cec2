// Package worker is the node agent. It keeps a session with a manager's
// dispatcher, runs the tasks assigned to its node through a
// runtime.Executor, restarts their containers in place by their restart
// policy, and reports their status. It keeps its containers running while
// no manager answers, and adopts them again after its own restart. It also
// loads the image archives imported into the cluster, fetched through its
// session's connection, and reports the images the node holds.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
)

// Config sets up an Agent. NodeID, Executor and Dial are required; zero
// durations take DefaultConfig's values.
type Config struct {
	NodeID      string
	Description *api.NodeDescription
	// Addr is the address the node is reachable at, as told to managers.
	Addr     string
	Executor runtime.Executor
	// Dial reaches a manager's dispatcher.
	Dial func(ctx context.Context) (api.DispatcherClient, error)
	// OnManagers, when set, gets the cluster's manager addresses each time a
	// session starts with a manager that names them, to fail over to.
	OnManagers func(addrs []string)
	// OnRole, when set, gets the node's role as each session names it:
	// the host switches between worker and manager when it differs from
	// what it runs as. It must not block.
	OnRole func(api.NodeRole)
	// DataDir holds the agent's files: task logs go to DataDir/logs/<task-id>.log.
	// Empty discards container output.
	DataDir string
	Logger  *slog.Logger

	// ReconnectMin and ReconnectMax bound the back-off between sessions.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// RestartDelay is the first restart back-off of a task whose policy sets
	// none; it doubles per restart up to RestartMaxDelay, and starts over
	// once a container ran longer than RestartResetAfter.
	RestartDelay      time.Duration
	RestartMaxDelay   time.Duration
	RestartResetAfter time.Duration
	// RetryDelay is the first pause before retrying a failed runtime call,
	// or a failed image archive load (doubling up to RestartMaxDelay).
	RetryDelay time.Duration
	// ProgressInterval is the least time between two pull progress reports.
	ProgressInterval time.Duration
	// StopGrace is how long a container may take to stop when its spec does
	// not say.
	StopGrace time.Duration
	// HeartbeatPeriod is used when the manager names none.
	HeartbeatPeriod time.Duration
	// Network is the node's overlay; nil runs host-network tasks only.
	Network Network
	// DrainPeriod is how long a stopping overlay task stays out of load
	// balancing before its container is signalled, when its spec does
	// not say.
	DrainPeriod time.Duration
	// MeshReportInterval is how often the node reports its WireGuard peers.
	MeshReportInterval time.Duration
	Now                func() time.Time
}

// DefaultConfig returns the production settings (without the required fields).
func DefaultConfig() Config {
	return Config{
		Logger:             slog.Default(),
		ReconnectMin:       100 * time.Millisecond,
		ReconnectMax:       10 * time.Second,
		RestartDelay:       100 * time.Millisecond,
		RestartMaxDelay:    10 * time.Second,
		RestartResetAfter:  10 * time.Second,
		RetryDelay:         100 * time.Millisecond,
		ProgressInterval:   500 * time.Millisecond,
		StopGrace:          10 * time.Second,
		HeartbeatPeriod:    5 * time.Second,
		DrainPeriod:        time.Second,
		MeshReportInterval: 5 * time.Second,
		Now:                time.Now,
	}
}

func (c Config) withDefaults() Config {
	def := DefaultConfig()
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.ReconnectMin, &def.ReconnectMin}, {&c.ReconnectMax, &def.ReconnectMax},
		{&c.RestartDelay, &def.RestartDelay}, {&c.RestartMaxDelay, &def.RestartMaxDelay},
		{&c.RestartResetAfter, &def.RestartResetAfter}, {&c.RetryDelay, &def.RetryDelay},
		{&c.ProgressInterval, &def.ProgressInterval}, {&c.StopGrace, &def.StopGrace},
		{&c.HeartbeatPeriod, &def.HeartbeatPeriod}, {&c.DrainPeriod, &def.DrainPeriod},
		{&c.MeshReportInterval, &def.MeshReportInterval},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if c.Logger == nil {
		c.Logger = def.Logger
	}
	if c.Now == nil {
		c.Now = def.Now
	}
	return c
}

// Agent is the node agent.
type Agent struct {
	cfg  Config
	log  *slog.Logger
	exec *taskExec
	rep  *reporter
	// images loads imported image archives; imgReport holds the node's
	// image list until a session sends it.
	images    *imageLoader
	imgReport *imageReport
	logReqs   logRequests

	mu      sync.Mutex
	runners map[string]*runner
	runCtx  context.Context // set by Run, before any runner starts
	cancel  context.CancelFunc
	stopped bool
	done    chan struct{}
	wg      sync.WaitGroup // runners and orphan sweeps
}

// New checks cfg and prepares the agent's directories.
func New(cfg Config) (*Agent, error) {
	switch {
	case cfg.NodeID == "":
		return nil, errors.New("worker: config has no node ID")
	case cfg.Executor == nil:
		return nil, errors.New("worker: config has no executor")
	case cfg.Dial == nil:
		return nil, errors.New("worker: config has no way to dial a manager")
	}
	cfg = cfg.withDefaults()
	var logDir string
	if cfg.DataDir != "" {
		logDir = filepath.Join(cfg.DataDir, "logs")
		if err := os.MkdirAll(logDir, 0o700); err != nil {
			return nil, fmt.Errorf("worker: create log directory: %w", err)
		}
	}
	a := &Agent{
		cfg:       cfg,
		log:       cfg.Logger.With("module", "worker", "node.id", cfg.NodeID),
		rep:       newReporter(),
		imgReport: newImageReport(),
		runners:   map[string]*runner{},
		done:      make(chan struct{}),
	}
	a.images = newImageLoader(cfg.Executor, cfg.NodeID, a.log, cfg.RetryDelay, cfg.RestartMaxDelay, a.reportImages)
	a.exec = &taskExec{
		rt: cfg.Executor, nodeID: cfg.NodeID, logDir: logDir, now: cfg.Now,
		progressEvery: cfg.ProgressInterval, stopGrace: cfg.StopGrace,
		restart:  restartConfig{delay: cfg.RestartDelay, maxDelay: cfg.RestartMaxDelay, resetAfter: cfg.RestartResetAfter},
		archives: a.images, imagesChanged: a.reportImages,
		net: cfg.Network, drainPeriod: cfg.DrainPeriod,
	}
	return a, nil
}

// Run keeps a session with a manager and runs the node's tasks until ctx
// ends or Stop is called. Containers keep running when it returns: the next
// agent adopts them.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.runCtx != nil {
		a.mu.Unlock()
		return errors.New("worker: an agent runs once")
	}
	if a.stopped {
		a.mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	a.runCtx, a.cancel = ctx, cancel
	a.mu.Unlock()
	defer close(a.done)
	defer cancel()

	a.log.Info("agent started")
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.images.run(ctx)
	}()
	a.connect(ctx)
	cancel()
	a.wg.Wait()
	a.log.Info("agent stopped")
	return nil
}

// Stop ends Run and waits for it.
func (a *Agent) Stop() {
	a.mu.Lock()
	cancel := a.cancel
	a.stopped = true
	a.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-a.done
}

// connect keeps a session open, reconnecting with capped exponential
// back-off and jitter when it breaks.
func (a *Agent) connect(ctx context.Context) {
	delay := a.cfg.ReconnectMin
	for {
		established, err := a.session(ctx)
		if ctx.Err() != nil {
			return
		}
		// A session that worked resets the back-off, unless a newer session
		// of this node replaced it: two agents of one node must not flap fast.
		if established && status.Code(err) != codes.Aborted {
			delay = a.cfg.ReconnectMin
		}
		wait := delay/2 + rand.N(delay/2+1)
		a.log.Warn("no session with a manager; reconnecting", "err", err, "retry.in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		delay = min(2*delay, a.cfg.ReconnectMax)
	}
}
