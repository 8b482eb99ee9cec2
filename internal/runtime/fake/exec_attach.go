package fake

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/warren-project/warren/internal/runtime"
)

// AttachFunc plays a command run by ExecAttach in container id, with its
// streams in opts (nil writers replaced by io.Discard): what it returns is
// what ExecAttach returns. ctx ends when the caller gives up.
type AttachFunc func(ctx context.Context, id string, cmd []string, opts runtime.ExecOptions) (exitCode int, err error)

// SetExecAttach makes ExecAttach call fn. With none (nil), ExecAttach plays
// the command with the ExecFunc of SetExec, its output going to Stdout.
func (f *Executor) SetExecAttach(fn AttachFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attach = fn
}

// ExecAttach records cmd (see Execs) and plays it with the AttachFunc set
// by SetExecAttach. The container must be running.
func (f *Executor) ExecAttach(ctx context.Context, id string, cmd []string, opts runtime.ExecOptions) (int, error) {
	f.mu.Lock()
	fn := f.attach
	f.mu.Unlock()
	if fn == nil {
		code, out, err := f.Exec(ctx, id, cmd, 0)
		if err == nil && opts.Stdout != nil {
			_, err = opts.Stdout.Write(out)
		}
		return code, err
	}
	if len(cmd) == 0 || cmd[0] == "" {
		return -1, fmt.Errorf("exec in container %s: no command: %w", id, runtime.ErrInvalidArgument)
	}
	if err := f.enter("ExecAttach"); err != nil {
		return -1, err
	}
	c, ok := f.containers[id]
	if !ok || c.run == nil || !c.run.running() {
		f.mu.Unlock()
		return -1, fmt.Errorf("container %s is not running: %w", id, runtime.ErrNotFound)
	}
	if f.execs == nil {
		f.execs = map[string][][]string{}
	}
	f.execs[id] = append(f.execs[id], slices.Clone(cmd))
	f.mu.Unlock()
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	code, err := fn(ctx, id, slices.Clone(cmd), opts)
	if err == nil && ctx.Err() != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, ctx.Err())
	}
	return code, err
}
