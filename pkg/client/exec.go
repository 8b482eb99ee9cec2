package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/warren-project/warren/api"
)

// ExecOptions are the streams of an Exec.
type ExecOptions struct {
	// Stdin, when set, is the command's input; its end closes the
	// command's stdin. It is read from a goroutine that may outlive Exec
	// while a Read blocks.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output (nil: discarded).
	Stdout, Stderr io.Writer
	// Resize passes the local terminal's new sizes on (TTY).
	Resize <-chan *api.TerminalSize
	// Started, when set, is told the ID of the task the command runs in.
	Started func(taskID string)
}

// Exec runs start's command in a running task (start.Task names a task or
// a service), streams its input and output as opts say, and returns its
// exit code once it ends. An error means the command did not run to its
// end: the task does not run, its node is down or did not answer, or ctx
// ended. Like Logs, the stream has no call timeout.
func (c *Client) Exec(ctx context.Context, start *api.ExecStart, opts ExecOptions) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream, and with it the remote command
	stream, err := c.ControlClient.Exec(ctx)
	if err != nil {
		return -1, err
	}
	s := &execStream{stream: stream}
	start.Stdin = opts.Stdin != nil
	if err := s.send(&api.ExecInput{Msg: &api.ExecInput_Start{Start: start}}); err != nil {
		return -1, c.recvError(ctx, stream, err)
	}
	if opts.Stdin != nil {
		go s.pumpStdin(opts.Stdin)
	}
	if opts.Resize != nil {
		go s.pumpResize(ctx, opts.Resize)
	}
	return c.execOutput(ctx, stream, opts)
}

// execOutput writes the output until the exit code.
func (c *Client) execOutput(ctx context.Context, stream api.Control_ExecClient, opts ExecOptions) (int, error) {
	for {
		out, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return -1, errors.New("the exec ended without an exit code")
		}
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			return -1, err
		}
		switch m := out.GetMsg().(type) {
		case *api.ExecOutput_StartedTaskId:
			if opts.Started != nil {
				opts.Started(m.StartedTaskId)
			}
		case *api.ExecOutput_Stdout:
			err = write(opts.Stdout, m.Stdout)
		case *api.ExecOutput_Stderr:
			err = write(opts.Stderr, m.Stderr)
		case *api.ExecOutput_ExitCode:
			return int(m.ExitCode), nil
		}
		if err != nil {
			return -1, fmt.Errorf("write the command's output: %w", err)
		}
	}
}

// recvError is why a send failed: the server's status comes with Recv.
func (c *Client) recvError(ctx context.Context, stream api.Control_ExecClient, sendErr error) error {
	if !errors.Is(sendErr, io.EOF) {
		return sendErr
	}
	_, err := stream.Recv()
	if err == nil || errors.Is(err, io.EOF) {
		return sendErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func write(w io.Writer, p []byte) error {
	if w == nil {
		return nil
	}
	_, err := w.Write(p)
	return err
}

// execStream serialises the sends of stdin and resizes.
type execStream struct {
	mu     sync.Mutex
	stream api.Control_ExecClient
}

func (s *execStream) send(m *api.ExecInput) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream.Send(m)
}

// pumpStdin sends r's bytes, then says stdin closed.
func (s *execStream) pumpStdin(r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			data := append([]byte(nil), buf[:n]...)
			if s.send(&api.ExecInput{Msg: &api.ExecInput_Stdin{Stdin: data}}) != nil {
				return // the stream ended: Recv says why
			}
		}
		if err != nil {
			_ = s.send(&api.ExecInput{Msg: &api.ExecInput_StdinClosed{StdinClosed: true}})
			return
		}
	}
}

func (s *execStream) pumpResize(ctx context.Context, sizes <-chan *api.TerminalSize) {
	for {
		select {
		case sz, ok := <-sizes:
			if !ok {
				return
			}
			if s.send(&api.ExecInput{Msg: &api.ExecInput_Resize{Resize: sz}}) != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
