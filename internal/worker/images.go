package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
)

// imageLoader loads the image archives the managers tell the node to load
// (imported with `warren image import`, so no registry is involved): one at
// a time, fetched through the current session's connection straight into
// the executor. A failed load is tried again with back-off, on this session
// or the next. A task whose image is missing waits for the load of an
// archive holding it rather than pulling (await).
type imageLoader struct {
	exec     runtime.Executor
	nodeID   string
	log      *slog.Logger
	retryMin time.Duration
	retryMax time.Duration
	loaded   func(ctx context.Context) // after a load: report the node's images

	mu     sync.Mutex
	loads  map[string]*archiveLoad // by archive digest
	client api.DispatcherClient    // the current session's; nil between sessions
	wake   chan struct{}
}

// archiveLoad is what the node knows of one archive.
type archiveLoad struct {
	archive   *api.ImageArchive
	pending   bool // to be loaded (again)
	attempts  int  // failed attempts since it was last asked for
	notBefore time.Time
	attempt   *attempt // the next attempt's outcome
}

// attempt is the outcome of one load attempt, for tasks waiting on it:
// err is set before done is closed.
type attempt struct {
	done chan struct{}
	err  error
}

func newAttempt() *attempt { return &attempt{done: make(chan struct{})} }

func newImageLoader(exec runtime.Executor, nodeID string, log *slog.Logger, retryMin, retryMax time.Duration, loaded func(context.Context)) *imageLoader {
	return &imageLoader{
		exec: exec, nodeID: nodeID, log: log, retryMin: retryMin, retryMax: retryMax, loaded: loaded,
		loads: map[string]*archiveLoad{}, wake: make(chan struct{}, 1),
	}
}

func (l *imageLoader) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// want queues archive a for loading: a manager says the node lacks it.
func (l *imageLoader) want(a *api.ImageArchive) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ld := l.loads[a.GetDigest()]
	if ld == nil {
		ld = &archiveLoad{attempt: newAttempt()}
		l.loads[a.GetDigest()] = ld
	}
	ld.archive = a
	if !ld.pending {
		ld.pending, ld.attempts, ld.notBefore = true, 0, time.Time{}
	}
	l.forgetReplacedLocked(a)
	l.log.Info("image archive to load", "image.archive", a.GetDigest(), "image.refs", a.GetRefs())
	l.signal()
}

// forgetReplacedLocked drops loaded archives whose every image a names
// again: a re-import replaced them, and a task must wait for the new one.
func (l *imageLoader) forgetReplacedLocked(a *api.ImageArchive) {
	for d, ld := range l.loads {
		if d == a.GetDigest() || ld.pending {
			continue
		}
		if !slices.ContainsFunc(ld.archive.GetRefs(), func(r string) bool { return !slices.Contains(a.GetRefs(), r) }) {
			delete(l.loads, d)
		}
	}
}

// setClient gives the loader the session's connection (nil when it ends).
func (l *imageLoader) setClient(c api.DispatcherClient) {
	l.mu.Lock()
	l.client = c
	l.mu.Unlock()
	l.signal()
}

// run loads queued archives until ctx ends.
func (l *imageLoader) run(ctx context.Context) {
	for ctx.Err() == nil {
		ld, client, wait := l.next(time.Now())
		if ld == nil {
			l.sleep(ctx, wait)
			continue
		}
		err := l.load(ctx, client, ld.archive)
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		l.finish(ctx, ld, err)
	}
}

// next returns the archive to load now, or how long to wait (0: until
// something changes). The oldest import goes first.
func (l *imageLoader) next(now time.Time) (*archiveLoad, api.DispatcherClient, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client == nil {
		return nil, nil, 0
	}
	var best *archiveLoad
	var wait time.Duration
	for _, ld := range l.loads {
		switch {
		case !ld.pending:
		case ld.notBefore.After(now):
			if d := ld.notBefore.Sub(now); wait == 0 || d < wait {
				wait = d
			}
		case best == nil || older(ld.archive, best.archive):
			best = ld
		}
	}
	return best, l.client, wait
}

func older(a, b *api.ImageArchive) bool {
	if ta, tb := a.GetCreatedAt().AsTime(), b.GetCreatedAt().AsTime(); !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.GetDigest() < b.GetDigest()
}

func (l *imageLoader) sleep(ctx context.Context, d time.Duration) {
	var expired <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-ctx.Done():
	case <-l.wake:
	case <-expired:
	}
}

// finish records an attempt's outcome and wakes the tasks waiting on it.
func (l *imageLoader) finish(ctx context.Context, ld *archiveLoad, err error) {
	l.mu.Lock()
	done := ld.attempt
	ld.attempt = newAttempt()
	if err == nil {
		ld.pending = false
	} else if ctx.Err() == nil {
		ld.attempts++
		retry := min(l.retryMin<<min(ld.attempts-1, 20), l.retryMax)
		ld.notBefore = time.Now().Add(retry)
		l.log.Warn("cannot load image archive; will retry", "image.archive", ld.archive.GetDigest(), "image.refs", ld.archive.GetRefs(), "err", err, "retry.in", retry)
	}
	l.mu.Unlock()
	done.err = err
	close(done.done)
	if err == nil {
		l.log.Info("image archive loaded", "image.archive", ld.archive.GetDigest(), "image.refs", ld.archive.GetRefs())
		l.loaded(ctx)
	}
}

// await waits for the load of an archive holding image ref, when the node
// knows one: a pending load, or one loaded before whose image has gone
// since (it is loaded again). handled is false when no archive holds ref.
// The error is the outcome of the next attempt.
func (l *imageLoader) await(ctx context.Context, ref string, progress func(string)) (handled bool, err error) {
	l.mu.Lock()
	ld := l.findLocked(ref)
	if ld == nil {
		l.mu.Unlock()
		return false, nil
	}
	if !ld.pending {
		ld.pending, ld.attempts, ld.notBefore = true, 0, time.Time{}
		l.signal()
	}
	next, digest, tries := ld.attempt, ld.archive.GetDigest(), ld.attempts
	l.mu.Unlock()
	if progress != nil {
		msg := fmt.Sprintf("waiting for imported image %s (archive %s) to load from a manager", ref, shortDigest(digest))
		if tries > 0 {
			msg += fmt.Sprintf(" (%d attempts failed)", tries)
		}
		progress(msg)
	}
	select {
	case <-next.done:
	case <-ctx.Done():
		return true, ctx.Err()
	}
	if next.err != nil {
		return true, fmt.Errorf("load imported image archive %s: %w", digest, next.err)
	}
	return true, nil
}

// findLocked returns the newest archive holding ref, pending ones first.
func (l *imageLoader) findLocked(ref string) *archiveLoad {
	var best *archiveLoad
	for _, ld := range l.loads {
		if !slices.Contains(ld.archive.GetRefs(), ref) {
			continue
		}
		if best == nil || (ld.pending && !best.pending) || (ld.pending == best.pending && older(best.archive, ld.archive)) {
			best = ld
		}
	}
	return best
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}
