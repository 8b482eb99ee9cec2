// Package orchestrator turns services into tasks and keeps them so. A
// replicated service of N replicas has slots 1..N, each with one current
// task (desired RUNNING) and earlier ones kept as history (desired
// SHUTDOWN); a global service has one task per ready node. Nodes restart a
// task's container in place by its restart policy (Nomad's model); the
// orchestrator replaces a task only when it could not run (rejected,
// orphaned), when its node is lost, or when the spec changes (a rolling
// update). It also reaps tasks nobody needs any more.
//
// It is event driven: it watches services, tasks, nodes and the cluster
// object, and after a burst of changes reconciles each affected service in
// one store write. A slow sweep reconciles everything, as a safety net.
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-project/warren/internal/state"
)

// Config tunes the orchestrator. Zero fields take DefaultConfig's values.
type Config struct {
	Logger *slog.Logger
	// QuietPeriod is how long the event stream must pause before the
	// affected services are reconciled, so a burst costs one write each.
	QuietPeriod time.Duration
	// MaxDelay bounds how long a constant stream of events can put off a
	// reconcile.
	MaxDelay time.Duration
	// SweepInterval is how often every service is reconciled regardless.
	SweepInterval time.Duration
	// RejectBackoff is the first wait before replacing a rejected or
	// orphaned task whose restart policy sets no delay.
	RejectBackoff time.Duration
	// MaxBackoff caps that wait as it doubles.
	MaxBackoff time.Duration
	// RetryInterval is how soon a reconcile whose write failed runs again.
	RetryInterval time.Duration
}

// DefaultConfig returns the settings for a real cluster.
func DefaultConfig() Config {
	return Config{
		Logger:        slog.Default(),
		QuietPeriod:   5 * time.Millisecond,
		MaxDelay:      50 * time.Millisecond,
		SweepInterval: 30 * time.Second,
		RejectBackoff: time.Second,
		MaxBackoff:    time.Minute,
		RetryInterval: time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.QuietPeriod, &d.QuietPeriod}, {&c.MaxDelay, &d.MaxDelay},
		{&c.SweepInterval, &d.SweepInterval}, {&c.RejectBackoff, &d.RejectBackoff},
		{&c.MaxBackoff, &d.MaxBackoff}, {&c.RetryInterval, &d.RetryInterval},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return c
}

// Orchestrator reconciles services into tasks. Run it on the leader only:
// two orchestrators would both write (safely, through version checks, but
// twice the work).
type Orchestrator struct {
	store *state.MemoryStore
	cfg   Config
	log   *slog.Logger

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	running  atomic.Bool

	// synced is the store index up to which every event has been
	// reconciled; sweeps counts safety sweeps. Tests wait on both.
	synced atomic.Uint64
	sweeps atomic.Uint64
}

// New returns an orchestrator of store's services; Run starts it.
func New(store *state.MemoryStore, cfg Config) *Orchestrator {
	cfg = cfg.withDefaults()
	return &Orchestrator{
		store: store,
		cfg:   cfg,
		log:   cfg.Logger.With("module", "orchestrator"),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// Run reconciles until ctx ends or Stop is called, and then returns nil. It
// fails only if called twice or if the store's subscription breaks.
func (o *Orchestrator) Run(ctx context.Context) error {
	if !o.running.CompareAndSwap(false, true) {
		return errors.New("orchestrator: Run called twice")
	}
	defer close(o.done)
	select {
	case <-o.stop:
		return nil // stopped before it started
	default:
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-o.stop:
			cancel() // also ends a write in progress
		case <-ctx.Done():
		}
	}()

	l := newLoop(o)
	defer l.close()
	sub := o.store.ViewAndWatch(nil, func(tx state.ReadTx) {
		l.markAll(tx)
		l.seen = tx.Index()
	})
	defer sub.Cancel()
	o.log.Info("orchestrator started")
	defer o.log.Info("orchestrator stopped")
	l.flush(ctx)

	sweep := time.NewTicker(o.cfg.SweepInterval)
	defer sweep.Stop()
	for {
		l.publish()
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.C:
			if !ok {
				return fmt.Errorf("orchestrator: store subscription closed")
			}
			l.handle(ev)
		case <-l.quiet.C:
			l.flush(ctx)
		case <-l.wake.C:
			l.due()
			l.flush(ctx)
		case <-sweep.C:
			o.store.View(l.markAll)
			l.flush(ctx)
			o.sweeps.Add(1)
		}
	}
}

// Stop ends Run and waits for it to return. It may be called more than
// once, and before or without Run.
func (o *Orchestrator) Stop() {
	o.stopOnce.Do(func() { close(o.stop) })
	if o.running.Load() {
		<-o.done
	}
}

// reconcile plans and writes one service's changes in one transaction, and
// returns when it wants to look again (zero for never).
func (o *Orchestrator) reconcile(ctx context.Context, serviceID string) (time.Time, error) {
	var p *planner
	err := o.store.Update(ctx, func(tx state.Tx) error {
		p = newPlanner(readInput(tx, serviceID, time.Now()), o.cfg)
		p.run()
		return p.apply(tx)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("reconcile service %s: %w", serviceID, err)
	}
	if n := p.changes(); n > 0 {
		o.log.Debug("service reconciled", "service.id", serviceID, "tasks.created", len(p.creates),
			"tasks.deleted", len(p.deletes), "writes", n)
	}
	for _, t := range p.creates {
		if msg := t.GetStatus().GetMessage(); strings.HasPrefix(msg, "replaces ") {
			o.log.Info("task replaced", "service.id", serviceID, "task.id", t.GetId(),
				"task.slot", t.GetSlot(), "node.id", t.GetNodeId(), "reason", msg)
		}
	}
	return p.wake, nil
}
