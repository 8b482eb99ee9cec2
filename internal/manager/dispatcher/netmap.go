package dispatcher

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/allocator"
	"github.com/warren-project/warren/internal/state"
)

// BuildNetworkMap is the overlay as every node must know it, from the state
// in tx: the mesh (nodes with a block and a WireGuard key) and each
// service's VIP, published ports and backends. A backend is a task meant to
// run and running, so healthy where the service has a check, and not
// reported unhealthy since: a task turned unhealthy or told to stop leaves
// at once, before its container is signalled. The order is stable, so equal states give equal maps.
func BuildNetworkMap(tx state.ReadTx) *api.NetworkMap {
	m := &api.NetworkMap{Version: tx.Index()}
	if plan, err := allocator.Plan(tx); err == nil {
		// A cluster made before the overlay existed has no plan stored:
		// it has the defaults, as the allocator does.
		m.Config = allocator.NetworkConfig(plan)
	} else {
		m.Config = tx.GetCluster().GetSpec().GetNetwork()
	}
	for _, n := range tx.ListNodes() {
		nn := n.GetNetwork()
		if nn.GetBlock() == "" || nn.GetWireguardPublicKey() == "" {
			continue
		}
		m.Nodes = append(m.Nodes, &api.MeshNode{
			NodeId: n.GetId(), Block: nn.GetBlock(),
			WireguardPublicKey: nn.GetWireguardPublicKey(), WireguardEndpoint: nn.GetWireguardEndpoint(),
		})
	}
	slices.SortFunc(m.Nodes, func(a, b *api.MeshNode) int { return strings.Compare(a.GetNodeId(), b.GetNodeId()) })
	for _, svc := range tx.ListServices() {
		ep := svc.GetEndpoint()
		if ep.GetVip() == "" && len(ep.GetPorts()) == 0 {
			continue
		}
		se := &api.ServiceEndpoints{ServiceId: svc.GetId(), Name: svc.GetSpec().GetName(), Vip: ep.GetVip(), Ports: ep.GetPorts()}
		for _, t := range tx.ListTasks(state.ByService(svc.GetId())) {
			if isBackend(t) {
				se.Backends = append(se.Backends, &api.Backend{TaskId: t.GetId(), NodeId: t.GetNodeId(), Address: t.GetAddress(), Weight: 1})
			}
		}
		slices.SortFunc(se.Backends, func(a, b *api.Backend) int { return strings.Compare(a.GetTaskId(), b.GetTaskId()) })
		m.Services = append(m.Services, se)
	}
	slices.SortFunc(m.Services, func(a, b *api.ServiceEndpoints) int { return strings.Compare(a.GetName(), b.GetName()) })
	return m
}

func isBackend(t *api.Task) bool {
	return t.GetAddress() != "" && t.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING &&
		t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING &&
		t.GetStatus().GetHealth().GetState() != api.Health_STATE_UNHEALTHY
}

// mapCast holds the current network map and wakes the sessions that send
// it when it changes: each session sends the latest in its own goroutine,
// so a slow node delays nobody else and never gets a backlog of old maps.
type mapCast struct {
	mu      sync.Mutex
	cur     *api.NetworkMap
	content *api.NetworkMap // cur without its version, to compare content
	changed chan struct{}
}

func newMapCast() *mapCast { return &mapCast{changed: make(chan struct{})} }

// get returns the current map (nil before the first) and a channel closed
// at the next change.
func (c *mapCast) get() (*api.NetworkMap, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur, c.changed
}

// set publishes m if its content differs from the current map.
func (c *mapCast) set(m *api.NetworkMap) bool {
	content := proto.Clone(m).(*api.NetworkMap)
	content.Version = 0
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.content != nil && proto.Equal(c.content, content) {
		return false
	}
	c.cur, c.content = m, content
	close(c.changed)
	c.changed = make(chan struct{})
	return true
}

// concernsNetwork tells whether an event may change the network map: the
// map reads of a node only its network, and of a task only whether it is
// a backend, where and at which address. Task steps and node heartbeats
// that change none of it cost no rebuild.
func concernsNetwork(ev state.Event) bool {
	switch o := ev.Object.(type) {
	case *api.Task:
		old, ok := ev.Old.(*api.Task)
		if !ok { // created or deleted
			return isBackend(o)
		}
		return isBackend(o) != isBackend(old) ||
			isBackend(o) && (o.GetNodeId() != old.GetNodeId() || o.GetAddress() != old.GetAddress())
	case *api.Node:
		old, ok := ev.Old.(*api.Node)
		return !ok || !proto.Equal(o.GetNetwork(), old.GetNetwork())
	case *api.Service, *api.Cluster:
		return true
	}
	return ev.Kind == state.EventRestore
}

// runNetworkMap rebuilds the map after changes, batched like assignments,
// until ctx ends.
func (d *Dispatcher) runNetworkMap(ctx context.Context) {
	sub := d.store.ViewAndWatch(concernsNetwork, func(tx state.ReadTx) { d.maps.set(BuildNetworkMap(tx)) })
	defer sub.Cancel()
	b := newBatcher(d.cfg.BatchQuiet, d.cfg.BatchMaxDelay)
	defer b.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-sub.C:
			if !ok {
				return
			}
			b.touch(true)
		case <-b.C():
			b.reset()
			var m *api.NetworkMap
			d.store.View(func(tx state.ReadTx) { m = BuildNetworkMap(tx) })
			if d.maps.set(m) {
				d.log.Debug("network map changed", "version", m.GetVersion(), "services", len(m.GetServices()), "nodes", len(m.GetNodes()))
			}
		}
	}
}

func networkMapMessage(m *api.NetworkMap) *api.SessionMessage {
	return &api.SessionMessage{Msg: &api.SessionMessage_NetworkMap{NetworkMap: m}}
}

// meshReport is a node's last account of its WireGuard peers.
type meshReport struct {
	at     time.Time
	status *api.MeshStatus
}

// meshReports keeps each node's last mesh report, in memory: like
// heartbeats, they are too frequent and too fleeting for Raft.
type meshReports struct {
	mu    sync.Mutex
	nodes map[string]meshReport
}

func (r *meshReports) record(nodeID string, st *api.MeshStatus, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nodes == nil {
		r.nodes = map[string]meshReport{}
	}
	r.nodes[nodeID] = meshReport{at: at, status: st}
}

// MeshStatus returns node nodeID's last report of its peers and when it
// came; ok is false when the node has not reported to this manager.
func (d *Dispatcher) MeshStatus(nodeID string) (st *api.MeshStatus, at *timestamppb.Timestamp, ok bool) {
	d.mesh.mu.Lock()
	defer d.mesh.mu.Unlock()
	rep, ok := d.mesh.nodes[nodeID]
	if !ok {
		return nil, nil, false
	}
	return rep.status, timestamppb.New(rep.at), true
}
