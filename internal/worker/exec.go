package worker

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"google.golang.org/grpc/metadata"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
)

// resizeBuffer is how many terminal resizes may wait for the runtime; more
// are dropped, the next one makes up for them.
const resizeBuffer = 4

// serveExecRequest answers an exec request from the session whose context
// is ctx: an ExecAttach stream relaying the command, which the end of the
// session ends too (the command is then killed).
func (a *Agent) serveExecRequest(ctx context.Context, req *api.ExecRequest) {
	if req.GetRequestId() == "" {
		a.log.Warn("ignoring an exec request without an ID")
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.attachExec(ctx, req); err != nil && ctx.Err() == nil {
			a.log.Warn("exec failed", "request.id", req.GetRequestId(), "task.id", req.GetTaskId(), "err", err)
		}
	}()
}

// attachExec opens the request's ExecAttach stream and runs the command
// through it, ending with its exit code or the reason it did not run.
func (a *Agent) attachExec(ctx context.Context, req *api.ExecRequest) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream, and the command if it still runs
	client, err := a.cfg.Dial(ctx)
	if err != nil {
		return fmt.Errorf("dial manager: %w", err)
	}
	stream, err := client.ExecAttach(metadata.AppendToOutgoingContext(ctx, nodeIDMetadata, a.cfg.NodeID))
	if err != nil {
		return fmt.Errorf("open exec stream: %w", err)
	}
	out := &execSender{stream: stream}
	if err := out.send(&api.ExecFromNode{Msg: &api.ExecFromNode_RequestId{RequestId: req.GetRequestId()}}); err != nil {
		return err
	}
	in := newExecInput(req.GetStart().GetStdin())
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer cancel() // the manager ended the stream: the caller is gone, or has the end
		in.read(stream)
	}()
	code, err := a.runExec(ctx, req, in, out)
	in.closeStdin() // unblocks the reader's write to a command that is gone
	var end *api.ExecFromNode
	if err != nil {
		end = &api.ExecFromNode{Msg: &api.ExecFromNode_Error{Error: err.Error()}}
	} else {
		end = &api.ExecFromNode{Msg: &api.ExecFromNode_Output{Output: &api.ExecOutput{Msg: &api.ExecOutput_ExitCode{ExitCode: int32(code)}}}}
	}
	if serr := out.send(end); serr != nil {
		return serr
	}
	if cerr := stream.CloseSend(); cerr != nil {
		return cerr
	}
	// Canceling the stream now could lose the end on its way: the manager
	// ends the stream once it has it, and the reader sees that.
	<-read
	return err
}

// runExec runs the command in the task's container, its input coming from
// in, its output going through out.
func (a *Agent) runExec(ctx context.Context, req *api.ExecRequest, in *execInput, out *execSender) (int, error) {
	start, id := req.GetStart(), req.GetTaskId()
	if !a.holds(id) {
		return -1, fmt.Errorf("task %s does not run on node %s", id, a.cfg.NodeID)
	}
	opts := runtime.ExecOptions{
		TTY:    start.GetTty(),
		Env:    slices.Clone(start.GetEnv()),
		Stdout: execWriter{out, false},
		Stderr: execWriter{out, true},
		Size:   terminalSize(start.GetSize()),
		Resize: in.resize,
	}
	if in.stdinR != nil {
		opts.Stdin = in.stdinR
	}
	code, err := a.cfg.Executor.ExecAttach(ctx, id, start.GetCommand(), opts)
	if err != nil {
		return -1, fmt.Errorf("exec in task %s: %w", id, err)
	}
	return code, nil
}

// execInput is the caller's side of a command: its stdin, when it has
// one, and its terminal's sizes.
type execInput struct {
	stdinR *io.PipeReader
	stdinW *io.PipeWriter
	resize chan runtime.TerminalSize
}

func newExecInput(stdin bool) *execInput {
	in := &execInput{resize: make(chan runtime.TerminalSize, resizeBuffer)}
	if stdin {
		in.stdinR, in.stdinW = io.Pipe()
	}
	return in
}

func (in *execInput) closeStdin() {
	if in.stdinR != nil {
		in.stdinR.Close()
	}
}

// read passes the caller's input to the command until the manager ends
// the stream.
func (in *execInput) read(stream api.Dispatcher_ExecAttachClient) {
	for {
		msg, err := stream.Recv()
		if err != nil {
			if in.stdinW != nil {
				in.stdinW.Close()
			}
			return
		}
		m := msg.GetInput()
		switch {
		case m.GetStdinClosed() && in.stdinW != nil:
			in.stdinW.Close()
		case m.GetStdin() != nil && in.stdinW != nil:
			// A command that is gone closed the reader: the write fails,
			// and the rest of the input is dropped.
			_, _ = in.stdinW.Write(m.GetStdin())
		case m.GetResize() != nil:
			select {
			case in.resize <- terminalSize(m.GetResize()):
			default:
			}
		}
	}
}

func terminalSize(s *api.TerminalSize) runtime.TerminalSize {
	return runtime.TerminalSize{Width: uint16(min(s.GetWidth(), 0xffff)), Height: uint16(min(s.GetHeight(), 0xffff))}
}

// execSender serialises the sends of an exec stream: stdout, stderr and
// the end come from different goroutines.
type execSender struct {
	mu     sync.Mutex
	stream api.Dispatcher_ExecAttachClient
}

func (s *execSender) send(m *api.ExecFromNode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stream.Send(m); err != nil {
		return fmt.Errorf("send to manager: %w", err)
	}
	return nil
}

// execWriter sends what the command writes to one of its streams.
type execWriter struct {
	out    *execSender
	stderr bool
}

func (w execWriter) Write(p []byte) (int, error) {
	data := slices.Clone(p)
	o := &api.ExecOutput{Msg: &api.ExecOutput_Stdout{Stdout: data}}
	if w.stderr {
		o.Msg = &api.ExecOutput_Stderr{Stderr: data}
	}
	if err := w.out.send(&api.ExecFromNode{Msg: &api.ExecFromNode_Output{Output: o}}); err != nil {
		return 0, err
	}
	return len(p), nil
}
