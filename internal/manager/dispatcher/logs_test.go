package dispatcher

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// logNode is a node's session that hands over the log requests it gets.
type logNode struct {
	id   string
	reqs chan *api.LogRequest
	end  chan error
	stop context.CancelFunc
}

func (e *testEnv) connectLogNode(t *testing.T, nodeID string) *logNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := e.client.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&api.SessionRequest{Msg: &api.SessionRequest_Register{Register: &api.RegisterRequest{NodeId: nodeID}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("register %s: %v", nodeID, err)
	}
	n := &logNode{id: nodeID, reqs: make(chan *api.LogRequest, 10), end: make(chan error, 1), stop: cancel}
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				n.end <- err
				return
			}
			if r := msg.GetLogRequest(); r != nil {
				n.reqs <- r
			}
		}
	}()
	// The log requests go through the session once it is ready for them.
	waitFor(t, "the session of "+nodeID+" to take log requests", func() bool {
		e.d.mu.Lock()
		defer e.d.mu.Unlock()
		s := e.d.sessions[nodeID]
		return s != nil && s.out.ready()
	})
	return n
}

func (n *logNode) request(t *testing.T) *api.LogRequest {
	t.Helper()
	select {
	case r := <-n.reqs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("node %s got no log request within 10s", n.id)
		return nil
	}
}

// publish opens a PublishLogs stream as node nodeID.
func (e *testEnv) publish(t *testing.T, nodeID string) api.Dispatcher_PublishLogsClient {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(context.Background(), NodeIDMetadata, nodeID)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	stream, err := e.client.PublishLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return stream
}

func line(task, text string, sec int) *api.LogMessage {
	return &api.LogMessage{TaskId: task, Time: timestamppb.New(time.Unix(int64(sec), 0)), Stream: "stdout", Line: []byte(text)}
}

// collect reads ch until it closes.
func collect(t *testing.T, ch <-chan *api.LogMessage) []string {
	t.Helper()
	var out []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				return out
			}
			if m.GetNotice() != "" {
				out = append(out, "notice: "+m.GetNotice())
			} else {
				out = append(out, m.GetNodeId()+"/"+m.GetTaskId()+": "+string(m.GetLine()))
			}
		case <-timeout:
			t.Fatalf("the log channel did not close within 10s; got %q", out)
		}
	}
}

func TestLogsOfANodeWithoutSession(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.update(t, func(tx state.Tx) error {
		n1, n2 := tx.GetNode("n1"), tx.GetNode("n2")
		n1.Description = &api.NodeDescription{Hostname: "edge-1"}
		n1.Status = &api.NodeStatus{State: api.NodeState_NODE_STATE_DOWN}
		n2.Status = &api.NodeStatus{State: api.NodeState_NODE_STATE_READY}
		return errorsJoin(tx.Update(n1), tx.Update(n2))
	})
	for _, tt := range []struct{ node, want string }{
		{"n1", "notice: node edge-1 is down: logs of its tasks are not available"},
		{"n2", "notice: node n2 is not connected to this manager: logs of its tasks are not available"},
		{"gone", "notice: node gone is no longer in the cluster: logs of its tasks are not available"},
	} {
		t.Run(tt.node, func(t *testing.T) {
			ch, err := e.d.Logs(context.Background(), tt.node, &api.LogRequest{TaskIds: []string{"t1"}, Follow: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := collect(t, ch); len(got) != 1 || got[0] != tt.want {
				t.Fatalf("got %q; want just %q", got, tt.want)
			}
		})
	}
}

func errorsJoin(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func TestLogsFromANode(t *testing.T) {
	e := newTestEnv(t, testConfig())
	node := e.connectLogNode(t, "n1")
	ch, err := e.d.Logs(context.Background(), "n1", &api.LogRequest{TaskIds: []string{"t1", "t2"}, Tail: 5})
	if err != nil {
		t.Fatal(err)
	}
	req := node.request(t)
	if req.GetRequestId() == "" || req.GetTail() != 5 || len(req.GetTaskIds()) != 2 || req.GetCancel() {
		t.Fatalf("the node got %v; want the request with an ID", req)
	}
	pub := e.publish(t, "n1")
	sends := []*api.PublishLogsRequest{
		{RequestId: req.GetRequestId(), Messages: []*api.LogMessage{line("t1", "a", 1)}},
		// Lines of a task not asked for are dropped; a node speaks for itself.
		{Messages: []*api.LogMessage{line("t2", "b", 2), line("t9", "not asked", 3)}},
	}
	sends[1].Messages[0].NodeId = "n2"
	// The node's lines wait for the caller to take them: publish meanwhile.
	published := make(chan error, 1)
	go func() {
		for _, m := range sends {
			if err := pub.Send(m); err != nil {
				published <- err
				return
			}
		}
		_, err := pub.CloseAndRecv()
		published <- err
	}()
	if got, want := collect(t, ch), "n1/t1: a|n1/t2: b"; strings.Join(got, "|") != want {
		t.Fatalf("got %q; want %q", got, want)
	}
	if err := <-published; err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func TestLogsEndsAndCancels(t *testing.T) {
	cfg := testConfig()
	for _, tt := range []struct {
		name string
		// do ends the request one way, and returns the notice expected.
		do func(e *testEnv, node *logNode, pub api.Dispatcher_PublishLogsClient, cancel context.CancelFunc) string
		// cancels says the node must be told to stop.
		cancels bool
	}{
		{"the caller stops", func(_ *testEnv, _ *logNode, _ api.Dispatcher_PublishLogsClient, cancel context.CancelFunc) string {
			cancel()
			return ""
		}, true},
		{"the node fails", func(_ *testEnv, _ *logNode, pub api.Dispatcher_PublishLogsClient, _ context.CancelFunc) string {
			_ = pub.Send(&api.PublishLogsRequest{Error: "disk on fire"})
			return "notice: node n1: disk on fire"
		}, false},
		{"the node disconnects", func(_ *testEnv, node *logNode, _ api.Dispatcher_PublishLogsClient, _ context.CancelFunc) string {
			node.stop()
			return "notice: node n1 disconnected: the rest of its logs are not available"
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, cfg)
			node := e.connectLogNode(t, "n1")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch, err := e.d.Logs(ctx, "n1", &api.LogRequest{TaskIds: []string{"t1"}, Follow: true})
			if err != nil {
				t.Fatal(err)
			}
			req := node.request(t)
			pub := e.publish(t, "n1")
			if err := pub.Send(&api.PublishLogsRequest{RequestId: req.GetRequestId(), Messages: []*api.LogMessage{line("t1", "a", 1)}}); err != nil {
				t.Fatal(err)
			}
			if m := <-ch; string(m.GetLine()) != "a" {
				t.Fatalf("first message %v; want line a", m)
			}
			want := tt.do(e, node, pub, cancel)
			got := collect(t, ch)
			if want != "" && (len(got) != 1 || got[0] != want) {
				t.Fatalf("got %q; want %q", got, want)
			}
			if tt.cancels {
				if c := node.request(t); !c.GetCancel() || c.GetRequestId() != req.GetRequestId() {
					t.Fatalf("the node got %v; want a cancel of %s", c, req.GetRequestId())
				}
				// The node's further lines are refused.
				waitFor(t, "the node's stream refused", func() bool {
					return pub.Send(&api.PublishLogsRequest{Messages: []*api.LogMessage{line("t1", "late", 2)}}) != nil
				})
				if _, err := pub.CloseAndRecv(); status.Code(err) != codes.Canceled {
					t.Errorf("the node's stream ended with %v; want Canceled", err)
				}
			}
		})
	}
}

func TestLogsOfANodeThatDoesNotAnswer(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.d.logs.replyTimeout = 50 * time.Millisecond
	node := e.connectLogNode(t, "n1")
	ch, err := e.d.Logs(context.Background(), "n1", &api.LogRequest{TaskIds: []string{"t1"}})
	if err != nil {
		t.Fatal(err)
	}
	req := node.request(t)
	got := collect(t, ch)
	if len(got) != 1 || !strings.Contains(got[0], "node n1 did not answer the log request within 50ms") {
		t.Fatalf("got %q; want a notice that the node did not answer", got)
	}
	if c := node.request(t); !c.GetCancel() || c.GetRequestId() != req.GetRequestId() {
		t.Fatalf("the node got %v; want a cancel", c)
	}
}

func TestPublishLogsRefusals(t *testing.T) {
	e := newTestEnv(t, testConfig())
	node := e.connectLogNode(t, "n1")
	if _, err := e.d.Logs(context.Background(), "n1", &api.LogRequest{TaskIds: []string{"t1"}}); err != nil {
		t.Fatal(err)
	}
	id := node.request(t).GetRequestId()
	for _, tt := range []struct {
		name, node, request string
		want                codes.Code
	}{
		{"no node named", "", id, codes.InvalidArgument},
		{"another node", "n2", id, codes.PermissionDenied},
		{"no such request", "n1", "nope", codes.NotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.node != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, NodeIDMetadata, tt.node)
			}
			stream, err := e.client.PublishLogs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&api.PublishLogsRequest{RequestId: tt.request}); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if _, err := stream.CloseAndRecv(); status.Code(err) != tt.want {
				t.Fatalf("PublishLogs = %v; want %v", err, tt.want)
			}
		})
	}
}

func TestLogsWhenNotServing(t *testing.T) {
	d := New(state.NewTestStore(), testConfig())
	if _, err := d.Logs(context.Background(), "n1", &api.LogRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("Logs on a stopped dispatcher = %v; want Unavailable", err)
	}
}
