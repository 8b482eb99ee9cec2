package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warren-project/warren/internal/runtime"
)

// ExecAttach runs cmd beside the container's main process with its streams
// attached: see runtime.Executor. The end of opts.Stdin closes the
// command's stdin through CloseIO, which is how `cat` learns its input
// ended: closing our end of the fifo alone does not reach the process.
func (e *Executor) ExecAttach(ctx context.Context, id string, cmd []string, opts runtime.ExecOptions) (int, error) {
	if len(cmd) == 0 || cmd[0] == "" {
		return -1, fmt.Errorf("exec in container %s: no command: %w", id, runtime.ErrInvalidArgument)
	}
	ctx = e.WithNamespace(ctx)
	t, proc, err := e.execSetup(ctx, id, cmd)
	if err != nil {
		return -1, err
	}
	proc.Env = append(proc.Env, opts.Env...)
	stdout, stderr := orDiscard(opts.Stdout), orDiscard(opts.Stderr)
	ioOpts := []cio.Opt{}
	if opts.TTY {
		proc.Terminal = true
		if opts.Size.Width > 0 && opts.Size.Height > 0 {
			proc.ConsoleSize = &specs.Box{Width: uint(opts.Size.Width), Height: uint(opts.Size.Height)}
		}
		ioOpts = append(ioOpts, cio.WithTerminal)
	}
	var stdin *eofReader
	var in io.Reader
	if opts.Stdin != nil {
		stdin = &eofReader{r: opts.Stdin, eof: make(chan struct{})}
		in = stdin
	}
	ioOpts = append(ioOpts, cio.WithStreams(in, stdout, stderr))
	p, err := t.Exec(ctx, execID(), proc, cio.NewCreator(ioOpts...))
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	defer e.deleteProcess(ctx, id, p)
	exited, err := p.Wait(ctx)
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: wait: %w", id, err)
	}
	if err := p.Start(ctx); err != nil {
		return -1, fmt.Errorf("exec %q in container %s: %w", cmd[0], id, err)
	}
	var eof <-chan struct{}
	if stdin != nil {
		eof = stdin.eof
	}
	return e.attached(ctx, id, p, exited, eof, opts.Resize)
}

// attached serves a started exec process until it exits: it closes its
// stdin at the input's end and passes terminal resizes on.
func (e *Executor) attached(ctx context.Context, id string, p client.Process, exited <-chan client.ExitStatus, eof <-chan struct{}, resize <-chan runtime.TerminalSize) (int, error) {
	for {
		select {
		case s := <-exited:
			code, _, err := s.Result()
			if ctx.Err() != nil {
				// The wait ended with ctx, not the command.
				return -1, fmt.Errorf("exec in container %s: %w", id, ctx.Err())
			}
			if err != nil {
				return -1, fmt.Errorf("exec in container %s: wait: %w", id, err)
			}
			drain(p)
			return int(code), nil
		case <-eof:
			eof = nil
			if err := p.CloseIO(ctx, client.WithStdinCloser); err != nil {
				e.log.Debug("cannot close the stdin of an exec", "container.id", id, "error", err)
			}
		case sz, ok := <-resize:
			if !ok {
				resize = nil
				continue
			}
			if err := p.Resize(ctx, uint32(sz.Width), uint32(sz.Height)); err != nil {
				e.log.Debug("cannot resize the terminal of an exec", "container.id", id, "error", err)
			}
		case <-ctx.Done():
			// The deferred delete kills it.
			return -1, fmt.Errorf("exec in container %s: %w", id, ctx.Err())
		}
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// eofReader closes eof once its reader has ended (or failed).
type eofReader struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (r *eofReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			err = io.EOF // the command sees the end of its input either way
		}
		r.once.Do(func() { close(r.eof) })
	}
	return n, err
}
