package fake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/warren-project/warren/internal/runtime"
)

// ExecFunc plays a command run by Exec in container id: what it returns is
// what Exec returns (output cut to runtime.ExecOutputLimit). ctx ends at
// Exec's timeout, so a function that blocks on it plays a hung command.
type ExecFunc func(ctx context.Context, id string, cmd []string) (exitCode int, output []byte, err error)

// SetExec makes Exec call fn; with none (nil) every command exits 0
// without output.
func (f *Executor) SetExec(fn ExecFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exec = fn
}

// Execs returns the commands Exec ran in container id, oldest first.
func (f *Executor) Execs(id string) [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]string, 0, len(f.execs[id]))
	for _, cmd := range f.execs[id] {
		out = append(out, slices.Clone(cmd))
	}
	return out
}

// SetImageHealthcheck gives image ref the HEALTHCHECK hc in its config
// (nil takes it away). The image need not be stored yet.
func (f *Executor) SetImageHealthcheck(ref string, hc *runtime.Healthcheck) {
	n, err := runtime.NormalizeRef(ref)
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.healthchecks == nil {
		f.healthchecks = map[string]*runtime.Healthcheck{}
	}
	if hc == nil {
		delete(f.healthchecks, n)
		return
	}
	f.healthchecks[n] = cloneHealthcheck(hc)
}

func (f *Executor) ImageConfig(_ context.Context, ref string) (runtime.ImageConfig, error) {
	n, err := runtime.NormalizeRef(ref)
	if err != nil {
		return runtime.ImageConfig{}, err
	}
	if err := f.enter("ImageConfig"); err != nil {
		return runtime.ImageConfig{}, err
	}
	defer f.mu.Unlock()
	if _, ok := f.images[n]; !ok {
		return runtime.ImageConfig{}, fmt.Errorf("image %s: %w", n, runtime.ErrNotFound)
	}
	return runtime.ImageConfig{Healthcheck: cloneHealthcheck(f.healthchecks[n])}, nil
}

// Exec records cmd and plays it with the ExecFunc set by SetExec. The
// container must be running.
func (f *Executor) Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (int, []byte, error) {
	if len(cmd) == 0 || cmd[0] == "" {
		return -1, nil, fmt.Errorf("exec in container %s: no command: %w", id, runtime.ErrInvalidArgument)
	}
	if err := f.enter("Exec"); err != nil {
		return -1, nil, err
	}
	c, ok := f.containers[id]
	if !ok || c.run == nil || !c.run.running() {
		f.mu.Unlock()
		return -1, nil, fmt.Errorf("container %s is not running: %w", id, runtime.ErrNotFound)
	}
	if f.execs == nil {
		f.execs = map[string][][]string{}
	}
	f.execs[id] = append(f.execs[id], slices.Clone(cmd))
	fn := f.exec
	f.mu.Unlock()
	if fn == nil {
		return 0, nil, nil
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	code, out, err := fn(ctx, id, slices.Clone(cmd))
	if len(out) > 2*runtime.ExecOutputLimit {
		out = out[:2*runtime.ExecOutputLimit]
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return -1, out, fmt.Errorf("exec in container %s: timed out after %s: %w", id, timeout, context.DeadlineExceeded)
	case ctx.Err() != nil:
		return -1, nil, fmt.Errorf("exec in container %s: %w", id, ctx.Err())
	case err != nil:
		return -1, out, err
	}
	return code, out, nil
}

func cloneHealthcheck(hc *runtime.Healthcheck) *runtime.Healthcheck {
	if hc == nil {
		return nil
	}
	c := *hc
	c.Test = slices.Clone(hc.Test)
	return &c
}
