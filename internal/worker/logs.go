package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/logfile"
)

// Limits of one PublishLogs message: lines go as soon as there are any,
// and as many as are ready at once, up to these.
const (
	maxLogBatch      = 512
	maxLogBatchBytes = 1 << 20
	// logBuffer is how many lines a task's reader may be ahead of the sender.
	logBuffer = 256
)

// logRequests are the log requests an agent serves, by request ID, so that
// a cancel finds its request.
type logRequests struct {
	mu      sync.Mutex
	cancels map[string]context.CancelFunc
}

func (r *logRequests) add(id string, cancel context.CancelFunc) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.cancels[id]; dup {
		return false
	}
	if r.cancels == nil {
		r.cancels = map[string]context.CancelFunc{}
	}
	r.cancels[id] = cancel
	return true
}

// end cancels the request id, if it is still served.
func (r *logRequests) end(id string) {
	r.mu.Lock()
	cancel := r.cancels[id]
	delete(r.cancels, id)
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// serveLogRequest answers a log request from the session whose context is
// ctx: a PublishLogs stream of the requested tasks' lines, which the end of
// the session ends too. A cancel ends the request it names.
func (a *Agent) serveLogRequest(ctx context.Context, req *api.LogRequest) {
	id := req.GetRequestId()
	if req.GetCancel() {
		a.logReqs.end(id)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	if id == "" || !a.logReqs.add(id, cancel) {
		cancel()
		a.log.Warn("ignoring a log request without a new ID", "request.id", id)
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer a.logReqs.end(id)
		if err := a.publishLogs(ctx, req); err != nil && ctx.Err() == nil {
			a.log.Warn("cannot publish logs", "request.id", id, "err", err)
		}
	}()
}

// publishLogs streams the lines of the request's tasks to the manager:
// in time order across tasks, or, when following, as they are written.
func (a *Agent) publishLogs(ctx context.Context, req *api.LogRequest) error {
	client, err := a.cfg.Dial(ctx)
	if err != nil {
		return fmt.Errorf("dial manager: %w", err)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, nodeIDMetadata, a.cfg.NodeID)
	stream, err := client.PublishLogs(ctx)
	if err != nil {
		return fmt.Errorf("open log stream: %w", err)
	}
	if err := stream.Send(&api.PublishLogsRequest{RequestId: req.GetRequestId()}); err != nil {
		return closeErr(stream, err)
	}
	if a.exec.logDir == "" {
		err = fmt.Errorf("node %s keeps no task logs (it runs without a data directory)", a.cfg.NodeID)
	} else {
		err = sendLogs(stream, a.taskLogs(ctx, req))
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) {
		// The manager tells the person who asked.
		_ = stream.Send(&api.PublishLogsRequest{Error: err.Error()})
	}
	_, rerr := stream.CloseAndRecv()
	if err == nil {
		err = rerr
	}
	return err
}

func closeErr(stream api.Dispatcher_PublishLogsClient, sendErr error) error {
	if errors.Is(sendErr, io.EOF) { // the manager ended the stream: it says why
		_, err := stream.CloseAndRecv()
		return err
	}
	return sendErr
}

// taskLogs reads the tasks' logs into one channel, closed at the end.
func (a *Agent) taskLogs(ctx context.Context, req *api.LogRequest) <-chan *api.LogMessage {
	var ins []<-chan *api.LogMessage
	for _, id := range req.GetTaskIds() {
		ins = append(ins, a.readTaskLog(ctx, id, req))
	}
	if req.GetFollow() {
		return fanIn(ctx, ins)
	}
	return logfile.MergeByTime(ctx, ins, messageTime)
}

func messageTime(m *api.LogMessage) (time.Time, bool) {
	return m.GetTime().AsTime(), m.GetNotice() == "" && m.GetTime() != nil
}

// readTaskLog reads task id's log into a channel of its own.
func (a *Agent) readTaskLog(ctx context.Context, id string, req *api.LogRequest) <-chan *api.LogMessage {
	out := make(chan *api.LogMessage, logBuffer)
	send := func(m *api.LogMessage) error {
		select {
		case out <- m:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	notice := func(s string) {
		_ = send(&api.LogMessage{TaskId: id, NodeId: a.cfg.NodeID, Notice: fmt.Sprintf("task %s: %s", id, s)})
	}
	go func() {
		defer close(out)
		if !validTaskID(id) {
			notice("not a task ID")
			return
		}
		opts := logfile.ReadOptions{Tail: -1, Follow: req.GetFollow(), Note: notice}
		if t := req.GetTail(); t > 0 {
			opts.Tail = int(t)
		}
		if s := req.GetSince(); s != nil {
			opts.Since = s.AsTime()
		}
		path := logPath(a.exec.logDir, id)
		if opts.Follow && !a.holds(id) {
			// A task gone from the node will write no log: following one
			// it has none of would wait for ever.
			if files, _ := logfile.Files(path); len(files) == 0 {
				opts.Follow = false
			}
		}
		err := logfile.Read(ctx, path, opts, func(r logfile.Record) error {
			return send(&api.LogMessage{TaskId: id, NodeId: a.cfg.NodeID, Time: timestamppb.New(r.Time), Stream: r.Stream, Line: r.Line})
		})
		if err != nil && ctx.Err() == nil {
			notice(err.Error())
		}
	}()
	return out
}

// holds tells whether the node runs (or tears down) task id.
func (a *Agent) holds(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runners[id] != nil
}

// validTaskID keeps a request from naming a file outside the log directory.
func validTaskID(id string) bool {
	return id != "" && !strings.ContainsAny(id, `/\`) && !strings.HasPrefix(id, ".")
}

// fanIn passes on what ins give as it comes; the output closes when they
// all have.
func fanIn(ctx context.Context, ins []<-chan *api.LogMessage) <-chan *api.LogMessage {
	out := make(chan *api.LogMessage, logBuffer)
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range in {
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}

// sendLogs sends what in gives in batches: whatever is ready at once, so
// a chatty task costs few messages and a quiet one no delay.
func sendLogs(stream api.Dispatcher_PublishLogsClient, in <-chan *api.LogMessage) error {
	for m := range in {
		batch, size := []*api.LogMessage{m}, len(m.GetLine())
	more:
		for len(batch) < maxLogBatch && size < maxLogBatchBytes {
			select {
			case m, ok := <-in:
				if !ok {
					break more
				}
				batch, size = append(batch, m), size+len(m.GetLine())
			default:
				break more
			}
		}
		if err := stream.Send(&api.PublishLogsRequest{Messages: batch}); err != nil {
			return closeErr(stream, err)
		}
	}
	return nil
}
