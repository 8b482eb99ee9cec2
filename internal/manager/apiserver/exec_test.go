package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/dispatcher"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/fake"
	"github.com/warren-project/warren/internal/state"
)

// execResult is what an Exec call gave.
type execResult struct {
	task, stdout, stderr string
	code                 int
}

// exec runs start through the Control API, sending stdin (when not nil)
// then closing it.
func (c *logCluster) exec(start *api.ExecStart, stdin []string) (execResult, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := c.control.Exec(ctx)
	if err != nil {
		return execResult{}, err
	}
	start.Stdin = stdin != nil
	if err := stream.Send(&api.ExecInput{Msg: &api.ExecInput_Start{Start: start}}); err != nil {
		return execResult{}, err
	}
	for _, s := range stdin {
		if err := stream.Send(&api.ExecInput{Msg: &api.ExecInput_Stdin{Stdin: []byte(s)}}); err != nil {
			return execResult{}, err
		}
	}
	if stdin != nil {
		if err := stream.Send(&api.ExecInput{Msg: &api.ExecInput_StdinClosed{StdinClosed: true}}); err != nil {
			return execResult{}, err
		}
	}
	var r execResult
	var stdout, stderr strings.Builder
	for {
		out, err := stream.Recv()
		if err != nil {
			return r, err
		}
		switch m := out.GetMsg().(type) {
		case *api.ExecOutput_StartedTaskId:
			r.task = m.StartedTaskId
		case *api.ExecOutput_Stdout:
			stdout.Write(m.Stdout)
		case *api.ExecOutput_Stderr:
			stderr.Write(m.Stderr)
		case *api.ExecOutput_ExitCode:
			r.stdout, r.stderr, r.code = stdout.String(), stderr.String(), int(m.ExitCode)
			return r, nil
		}
	}
}

// playShell makes node's containers play `sh -c 'echo out; echo err >&2;
// exit 3'` and `cat` (stdin to stdout).
func playShell(ctx context.Context, _ string, cmd []string, o runtime.ExecOptions) (int, error) {
	switch cmd[0] {
	case "cat":
		if o.Stdin == nil {
			return 0, nil
		}
		_, err := io.Copy(o.Stdout, o.Stdin)
		return 0, err
	case "sh":
		fmt.Fprintln(o.Stdout, "out")
		fmt.Fprintln(o.Stderr, "err")
		return 3, nil
	case "hang":
		<-ctx.Done()
		return -1, ctx.Err()
	}
	return -1, fmt.Errorf("exec %q: executable file not found", cmd[0])
}

// newExecCluster is newLogCluster's cluster with Exec served too: nodes n1
// (with an agent, tasks t1 and t2 of web running on it) and n2 (down).
func newExecCluster(t *testing.T) *logCluster {
	t.Helper()
	c := &logCluster{t: t, store: state.NewTestStore(), execs: map[string]*fake.Executor{}}
	c.update(func(tx state.Tx) error {
		errs := []error{tx.Create(&api.Service{Id: "svc1", Meta: &api.Meta{}, Spec: svcSpec("web", 2), SpecVersion: 1})}
		for i, id := range []string{"n1", "n2"} {
			errs = append(errs, tx.Create(&api.Node{Id: id, Meta: &api.Meta{}, Description: &api.NodeDescription{Hostname: fmt.Sprintf("edge-%d", i+1)}}))
		}
		return errors.Join(errs...)
	})
	d := dispatcher.New(c.store, dispatcher.Config{HeartbeatPeriod: 50 * time.Millisecond, NodeDownAfter: time.Minute, Logger: quietLog})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(ctx) }()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	api.RegisterDispatcherServer(srv, d)
	api.RegisterControlServer(srv, New(Config{Store: c.store, Logs: d, Exec: d, Logger: quietLog}))
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c.control, c.dispatcher = api.NewControlClient(conn), api.NewDispatcherClient(conn)
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		cancel()
		<-runDone
	})
	c.startAgent("n1")
	c.execs["n1"].SetExecAttach(playShell)
	c.addTask("t2", "n1", 2)
	c.addTask("t1", "n1", 1)
	c.waitRunning("t1")
	c.waitRunning("t2")
	return c
}

func TestExecRunsTheCommand(t *testing.T) {
	c := newExecCluster(t)
	for _, tc := range []struct {
		name  string
		start *api.ExecStart
		stdin []string
		want  execResult
	}{
		{"service picks the lowest slot", &api.ExecStart{Task: "web", Command: []string{"sh", "-c", "x"}},
			nil, execResult{task: "t1", stdout: "out\n", stderr: "err\n", code: 3}},
		{"task by ID", &api.ExecStart{Task: "t2", Command: []string{"sh"}},
			nil, execResult{task: "t2", stdout: "out\n", stderr: "err\n", code: 3}},
		{"stdin reaches the command", &api.ExecStart{Task: "t1", Command: []string{"cat"}},
			[]string{"da", "ta\n"}, execResult{task: "t1", stdout: "data\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.exec(tc.start, tc.stdin)
			if err != nil {
				t.Fatalf("Exec: %v", err)
			}
			if got != tc.want {
				t.Errorf("Exec gave %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestExecRefusals(t *testing.T) {
	c := newExecCluster(t)
	c.update(func(tx state.Tx) error {
		failed := &api.Task{Id: "t3", Meta: &api.Meta{}, ServiceId: "svc1", ServiceName: "web", Slot: 3, NodeId: "n1",
			DesiredState: api.TaskState_TASK_STATE_SHUTDOWN, Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_FAILED}}
		// A task the store says runs, on a node with no agent: down.
		away := &api.Task{Id: "t4", Meta: &api.Meta{}, ServiceId: "svc1", ServiceName: "web", Slot: 4, NodeId: "n2",
			DesiredState: api.TaskState_TASK_STATE_RUNNING, Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING}}
		return errors.Join(tx.Create(failed), tx.Create(away))
	})
	for _, tc := range []struct {
		name  string
		start *api.ExecStart
		code  codes.Code
		msg   string
	}{
		{"task not running", &api.ExecStart{Task: "t3", Command: []string{"sh"}}, codes.FailedPrecondition, "task web.3 is not running (state: failed)"},
		{"node down", &api.ExecStart{Task: "t4", Command: []string{"sh"}}, codes.FailedPrecondition, "node edge-2 is down"},
		{"unknown", &api.ExecStart{Task: "nope", Command: []string{"sh"}}, codes.NotFound, "nope"},
		{"no command", &api.ExecStart{Task: "t1"}, codes.InvalidArgument, "no command"},
		{"command fails to run", &api.ExecStart{Task: "t1", Command: []string{"nosuch"}}, codes.FailedPrecondition, "executable file not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			begun := time.Now()
			_, err := c.exec(tc.start, nil)
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("Exec: %v, want %s with %q", err, tc.code, tc.msg)
			}
			if took := time.Since(begun); took > 2*time.Second {
				t.Errorf("the refusal took %s: it should come at once", took)
			}
		})
	}
}

// TestExecEndsWithTheCaller checks that a caller who goes kills the command.
func TestExecEndsWithTheCaller(t *testing.T) {
	c := newExecCluster(t)
	ended := make(chan struct{})
	c.execs["n1"].SetExecAttach(func(ctx context.Context, id string, cmd []string, o runtime.ExecOptions) (int, error) {
		fmt.Fprintln(o.Stdout, "started")
		<-ctx.Done()
		close(ended)
		return -1, ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := c.control.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&api.ExecInput{Msg: &api.ExecInput_Start{Start: &api.ExecStart{Task: "t1", Command: []string{"hang"}}}}); err != nil {
		t.Fatal(err)
	}
	for {
		out, err := stream.Recv()
		if err != nil {
			t.Fatalf("no output before the error %v", err)
		}
		if len(out.GetStdout()) > 0 {
			break
		}
	}
	cancel()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the command was not killed within 10s of its caller going")
	}
}
