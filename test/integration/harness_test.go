// Package integration runs whole clusters in one process: a manager and
// workers with real Raft, real gRPC over mutual TLS on loopback, real join
// tokens and certificates, and fake executors in place of containerd.
package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager"
	"github.com/warren-project/warren/internal/network/fakenet"
	"github.com/warren-project/warren/internal/node"
	"github.com/warren-project/warren/internal/runtime/fake"
	"github.com/warren-project/warren/internal/state"
	"github.com/warren-project/warren/internal/testutil"
	"github.com/warren-project/warren/pkg/client"
)

const image = "docker.io/library/busybox:latest"

// heartbeat is short so that a silent node is down in well under a second.
const heartbeat = 200 * time.Millisecond

type cluster struct {
	t       testing.TB
	dir     string
	mgr     *manager.Manager
	mgrExec *fake.Executor
	client  *client.Client
	workers map[string]*worker // by name
}

type worker struct {
	name   string
	dir    string
	exec   *fake.Executor
	node   *node.Node
	cancel context.CancelFunc
	done   chan error
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "wri")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &cluster{t: t, dir: dir, mgrExec: fake.New(), workers: map[string]*worker{}}
	c.mgrExec.AddImage(image)
	m, err := manager.New(manager.Config{
		DataDir: filepath.Join(dir, "manager"), SocketPath: filepath.Join(dir, "m.sock"),
		ListenAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t),
		Executor: c.mgrExec, Network: fakenet.New(), HeartbeatPeriod: heartbeat,
		RaftHeartbeat: 100 * time.Millisecond, RaftElection: 100 * time.Millisecond, RaftLeaderLease: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.mgr = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-m.Ready():
	case err := <-done:
		t.Fatalf("manager stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("manager not ready within 30s")
	}
	if c.client, err = client.New("unix://" + filepath.Join(dir, "m.sock")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.client.Close() })
	return c
}

func (c *cluster) token(role api.NodeRole) string {
	c.t.Helper()
	resp, err := c.client.GetJoinToken(context.Background(), &api.GetJoinTokenRequest{Role: role})
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.GetToken()
}

// join starts a worker named name that joins with the worker token, and
// waits until the manager sees it ready.
func (c *cluster) join(name string, desc *api.NodeDescription) *worker {
	c.t.Helper()
	w := &worker{name: name, dir: filepath.Join(c.dir, name), exec: fake.New()}
	w.exec.AddImage(image)
	c.workers[name] = w
	if err := c.start(w, c.token(api.NodeRole_NODE_ROLE_WORKER), desc); err != nil {
		c.t.Fatalf("join %s: %v", name, err)
	}
	c.waitNodeState(w.node.NodeID(), api.NodeState_NODE_STATE_READY)
	return w
}

// start runs w's node; an empty token resumes from its data dir.
func (c *cluster) start(w *worker, token string, desc *api.NodeDescription) error {
	if desc == nil {
		desc = &api.NodeDescription{Hostname: w.name, Platform: &api.Platform{Architecture: "amd64", Os: "linux"},
			Resources: &api.Resources{NanoCpus: 4e9, MemoryBytes: 8 << 30}}
	}
	n, err := node.New(node.Config{
		DataDir: w.dir, ManagerAddr: c.mgr.Addr().String(), Token: token,
		AdvertiseAddr: "127.0.0.1", Executor: w.exec, Network: fakenet.New(), Description: desc,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.node, w.cancel, w.done = n, cancel, make(chan error, 1)
	go func() { w.done <- n.Run(ctx) }()
	c.t.Cleanup(w.stop)
	select {
	case <-n.Ready():
		return nil
	case err := <-w.done:
		w.done <- err
		return err
	case <-time.After(30 * time.Second):
		c.t.Fatalf("node %s not ready within 30s", w.name)
	}
	return nil
}

// stop ends the worker's process (its containers stay, as on a real host).
func (w *worker) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	w.cancel = nil
}

func (c *cluster) waitNodeState(id string, want api.NodeState) {
	c.t.Helper()
	testutil.WaitFor(c.t, 20*time.Second, "node "+id+" "+want.String(), func() bool {
		var st api.NodeState
		c.mgr.Store().View(func(tx state.ReadTx) { st = tx.GetNode(id).GetStatus().GetState() })
		return st == want
	})
}

func (c *cluster) createService(spec *api.ServiceSpec) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.client.CreateService(ctx, &api.CreateServiceRequest{Spec: spec})
	if err != nil {
		c.t.Fatalf("create %s: %v", spec.GetName(), err)
	}
	return resp.GetService().GetId()
}

func (c *cluster) waitConverged(serviceID string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.client.WaitForService(ctx, serviceID, nil); err != nil {
		c.t.Fatalf("service %s did not converge: %v", serviceID, err)
	}
}

func replicated(name string, replicas uint64) *api.ServiceSpec {
	return &api.ServiceSpec{
		Name: name,
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}},
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox", Args: []string{"sleep", "1000"}}},
	}
}

// runningByNode counts a service's running current tasks per node ID.
func (c *cluster) runningByNode(serviceID string) map[string]int {
	out := map[string]int{}
	c.mgr.Store().View(func(tx state.ReadTx) {
		for _, t := range tx.ListTasks(state.ByService(serviceID)) {
			if t.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING && t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING {
				out[t.GetNodeId()]++
			}
		}
	})
	return out
}
