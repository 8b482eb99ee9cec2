package scheduler

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-project/warren/internal/state"
)

// Config tunes the Scheduler. Zero fields take DefaultConfig's values.
type Config struct {
	// Logger gets a "module" attribute added; default slog.Default().
	Logger *slog.Logger
	// QuietPeriod is how long the store must be quiet after a change before
	// a placement pass, so a burst of new tasks is placed in one pass.
	QuietPeriod time.Duration
	// MaxDelay bounds the wait for quiet under a steady stream of changes.
	MaxDelay time.Duration
	// SweepInterval is the period of the safety sweep, which reloads the
	// state and places whatever is pending, whether or not events said so.
	SweepInterval time.Duration
	// RetryInterval is the wait before retrying a pass whose write failed.
	RetryInterval time.Duration
	// Now stamps task statuses; default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the production settings.
func DefaultConfig() Config {
	return Config{
		Logger:        slog.Default(),
		QuietPeriod:   5 * time.Millisecond,
		MaxDelay:      50 * time.Millisecond,
		SweepInterval: 30 * time.Second,
		RetryInterval: time.Second,
		Now:           time.Now,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.QuietPeriod <= 0 {
		c.QuietPeriod = d.QuietPeriod
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = d.MaxDelay
	}
	if c.MaxDelay < c.QuietPeriod {
		c.MaxDelay = c.QuietPeriod
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = d.SweepInterval
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = d.RetryInterval
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}

// Scheduler assigns pending tasks to nodes. It watches the store for tasks
// and nodes, runs Schedule over everything pending after each burst of
// changes, and writes the decisions back in one update.
type Scheduler struct {
	store *state.MemoryStore
	cfg   Config
	log   *slog.Logger

	mu      sync.Mutex
	started bool
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	// passes counts placement passes, so tests can tell one happened.
	passes atomic.Int64
}

// New returns a scheduler over store; it does nothing until Run.
func New(store *state.MemoryStore, cfg Config) *Scheduler {
	cfg = cfg.withDefaults()
	return &Scheduler{
		store: store,
		cfg:   cfg,
		log:   cfg.Logger.With("module", "scheduler"),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// Run places tasks until ctx ends or Stop is called, and returns nil then.
// It runs at most once.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return nil
	}
	s.started = true
	s.mu.Unlock()
	defer close(s.done)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.log.Info("scheduler started")
	newRunner(s).loop(ctx)
	s.log.Info("scheduler stopped")
	return nil
}

// Stop ends Run and waits for it to return. A Scheduler that never ran
// stops at once (and will not run).
func (s *Scheduler) Stop() {
	s.once.Do(func() { close(s.stop) })
	s.mu.Lock()
	started := s.started
	s.started = true // a later Run returns at once
	s.mu.Unlock()
	if started {
		<-s.done
	}
}
