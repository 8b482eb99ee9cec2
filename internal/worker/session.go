package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/warren-project/warren/api"
)

// session runs one session with a manager until it breaks. established
// says the manager accepted the node.
func (a *Agent) session(ctx context.Context) (established bool, err error) {
	client, err := a.cfg.Dial(ctx)
	if err != nil {
		return false, fmt.Errorf("dial manager: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Session(ctx)
	if err != nil {
		return false, fmt.Errorf("open session: %w", err)
	}
	reg := &api.RegisterRequest{NodeId: a.cfg.NodeID, Description: a.cfg.Description, Addr: a.cfg.Addr, Images: a.registerImages(ctx)}
	if a.cfg.Network != nil {
		reg.Network = a.cfg.Network.Registration()
	}
	// io.EOF from Send means the manager ended the stream: Recv says why.
	if err := stream.Send(&api.SessionRequest{Msg: &api.SessionRequest_Register{Register: reg}}); err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("register: %w", err)
	}
	first, err := stream.Recv()
	if err != nil {
		return false, fmt.Errorf("register: %w", err)
	}
	info := first.GetSession()
	if info == nil {
		return false, errors.New("register: the manager answered without session info")
	}
	period := a.cfg.HeartbeatPeriod
	if p := info.GetHeartbeatPeriod().AsDuration(); p > 0 {
		period = p
	}
	log := a.log.With("session.id", info.GetSessionId())
	log.Info("session started", "heartbeat.period", period)
	a.learn(info)

	// The manager may have missed reports while there was no session.
	a.rep.resendAll()
	// Archive loads go through this session's connection.
	a.images.setClient(client)
	defer a.images.setClient(nil)
	sent := make(chan error, 1)
	go func() {
		err := a.sendLoop(ctx, stream, period)
		cancel() // a broken send ends the session
		sent <- err
	}()
	err = a.receiveLoop(stream)
	cancel()
	if sendErr := <-sent; err == nil {
		err = sendErr
	}
	return true, err
}

// receiveLoop applies assignments until the stream breaks or a sequence
// gap shows a message was lost (a new session resynchronises).
func (a *Agent) receiveLoop(stream api.Dispatcher_SessionClient) error {
	var seq uint64
	synced := false
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		if load := msg.GetLoadImage(); load != nil {
			a.images.want(load)
			continue
		}
		if req := msg.GetLogRequest(); req != nil {
			a.serveLogRequest(stream.Context(), req)
			continue
		}
		if req := msg.GetExecRequest(); req != nil {
			a.serveExecRequest(stream.Context(), req)
			continue
		}
		if info := msg.GetSession(); info != nil {
			a.learn(info)
			continue
		}
		if m := msg.GetNetworkMap(); m != nil {
			// In order, before later assignments: a new task may need
			// the block this map brings.
			if a.cfg.Network != nil {
				a.cfg.Network.Apply(m)
			}
			continue
		}
		asg := msg.GetAssignments()
		if asg == nil {
			continue
		}
		switch asg.GetType() {
		case api.Assignments_TYPE_COMPLETE:
			seq, synced = asg.GetSequence(), true
			a.log.Debug("assignments", "type", "complete", "tasks", len(asg.GetTasks()))
			a.applyComplete(asg.GetTasks())
		case api.Assignments_TYPE_INCREMENTAL:
			if !synced || asg.GetSequence() != seq+1 {
				return fmt.Errorf("assignments out of sequence: got #%d after #%d", asg.GetSequence(), seq)
			}
			seq = asg.GetSequence()
			a.applyIncremental(asg.GetTasks(), asg.GetRemovedTaskIds())
		}
	}
}

// sendLoop is the only sender on the stream: heartbeats every period, and
// status reports and image lists as soon as there are any.
func (a *Agent) sendLoop(ctx context.Context, stream api.Dispatcher_SessionClient, period time.Duration) error {
	tick := time.NewTicker(period)
	defer tick.Stop()
	var mesh <-chan time.Time
	if a.cfg.Network != nil {
		t := time.NewTicker(a.cfg.MeshReportInterval)
		defer t.Stop()
		mesh = t.C
	}
	for {
		if images, ok := a.imgReport.take(); ok {
			if err := stream.Send(&api.SessionRequest{Msg: &api.SessionRequest_Images{Images: &api.NodeImages{Images: images}}}); err != nil {
				return fmt.Errorf("send images: %w", err)
			}
			continue
		}
		if batch := a.rep.take(maxReportBatch); len(batch) > 0 {
			report := &api.TaskStatusReport{Updates: batch}
			if err := stream.Send(&api.SessionRequest{Msg: &api.SessionRequest_Status{Status: report}}); err != nil {
				return fmt.Errorf("send status: %w", err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.rep.wake:
		case <-a.imgReport.wake:
		case <-tick.C:
			if err := stream.Send(&api.SessionRequest{Msg: &api.SessionRequest_Heartbeat{Heartbeat: &api.Heartbeat{}}}); err != nil {
				return fmt.Errorf("send heartbeat: %w", err)
			}
		case <-mesh:
			if err := stream.Send(&api.SessionRequest{Msg: &api.SessionRequest_Mesh{Mesh: a.cfg.Network.MeshStatus()}}); err != nil {
				return fmt.Errorf("send mesh status: %w", err)
			}
		}
	}
}

// registerImages lists the images to register with. A report not sent yet
// is dropped: the registration carries a newer list. When the executor
// cannot list them the node registers with none, and managers may ask it to
// load imported archives it has: a wasted load, not a wrong one.
func (a *Agent) registerImages(ctx context.Context) []*api.Image {
	a.imgReport.take()
	images, err := a.listImages(ctx)
	if err != nil {
		a.log.Warn("registering without the node's images", "err", err)
	}
	return images
}
