package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client"
)

// startTerminal puts the local terminal in raw mode for a -t exec, sends
// its size with the start and passes size changes on. restore puts the
// terminal back.
func (c *cli) startTerminal(ctx context.Context, start *api.ExecStart, opts *client.ExecOptions) (restore func(), err error) {
	in, ok := c.in.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return nil, errors.New("exec -t needs a terminal on stdin: run without -t, or from a terminal")
	}
	fd := int(in.Fd())
	if w, h, err := term.GetSize(fd); err == nil {
		start.Size = &api.TerminalSize{Width: uint32(w), Height: uint32(h)}
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	resize := make(chan *api.TerminalSize, 1)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-winch:
				if w, h, err := term.GetSize(fd); err == nil {
					select {
					case resize <- &api.TerminalSize{Width: uint32(w), Height: uint32(h)}:
					default: // a newer size follows
					}
				}
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	opts.Resize = resize
	return func() {
		signal.Stop(winch)
		close(done)
		_ = term.Restore(fd, state)
	}, nil
}
