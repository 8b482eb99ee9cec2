package dispatcher

import (
	"fmt"
	"sync"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// heartbeats tracks when each node was last heard from, in memory only, and
// calls expire for a node that stays silent for downAfter. One timer per
// node, reset on each heartbeat: no sweep, and no store write while healthy.
type heartbeats struct {
	downAfter time.Duration
	expire    func(nodeID string)

	mu      sync.Mutex
	nodes   map[string]*heartbeat
	stopped bool
	firing  sync.WaitGroup // expire calls in progress
}

type heartbeat struct {
	last  time.Time
	timer *time.Timer
}

func newHeartbeats(downAfter time.Duration, expire func(nodeID string)) *heartbeats {
	return &heartbeats{downAfter: downAfter, expire: expire, nodes: map[string]*heartbeat{}}
}

// beat records that nodeID was heard from now.
func (h *heartbeats) beat(nodeID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	b := h.nodes[nodeID]
	if b == nil {
		b = &heartbeat{last: time.Now()}
		b.timer = time.AfterFunc(h.downAfter, func() { h.fire(nodeID, b) })
		h.nodes[nodeID] = b
		return
	}
	b.last = time.Now()
	b.timer.Reset(h.downAfter)
}

// alive tells whether nodeID has been heard from within downAfter.
func (h *heartbeats) alive(nodeID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.nodes[nodeID]
	return ok
}

func (h *heartbeats) fire(nodeID string, b *heartbeat) {
	h.mu.Lock()
	if h.stopped || h.nodes[nodeID] != b {
		h.mu.Unlock()
		return
	}
	if silent := time.Since(b.last); silent < h.downAfter {
		// A heartbeat came as the timer fired: wait for the rest.
		b.timer.Reset(h.downAfter - silent)
		h.mu.Unlock()
		return
	}
	delete(h.nodes, nodeID)
	h.firing.Add(1)
	h.mu.Unlock()
	defer h.firing.Done()
	h.expire(nodeID)
}

// stop cancels every timer and waits for expiries in progress.
func (h *heartbeats) stop() {
	h.mu.Lock()
	h.stopped = true
	for _, b := range h.nodes {
		b.timer.Stop()
	}
	h.nodes = map[string]*heartbeat{}
	h.mu.Unlock()
	h.firing.Wait()
}

// markDown marks a silent node DOWN and ends its session, if one is still
// open, so that the node registers again (and becomes READY) when it wakes.
func (d *Dispatcher) markDown(tm *term, nodeID string) {
	ctx := tm.ctx
	if ctx.Err() != nil {
		return // stopping
	}
	unlock := d.nodeLocks.Lock(nodeID)
	defer unlock()
	if tm.hb.alive(nodeID) {
		return // it registered again while this expiry waited for the lock
	}
	msg := fmt.Sprintf("no heartbeat for %s", d.cfg.NodeDownAfter)
	err := d.store.Update(ctx, func(tx state.Tx) error {
		n := tx.GetNode(nodeID)
		if n == nil || n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN {
			return nil
		}
		n.Status = &api.NodeStatus{State: api.NodeState_NODE_STATE_DOWN, Message: msg, Addr: n.GetStatus().GetAddr(), CertNotAfter: n.GetStatus().GetCertNotAfter()}
		return tx.Update(n)
	})
	log := d.log.With("node.id", nodeID)
	if err != nil && ctx.Err() == nil {
		log.Error("cannot mark silent node down", "err", err)
	} else if err == nil {
		log.Warn("node is down", "reason", msg)
	}
	d.endSession(nodeID, errExpired)
}
