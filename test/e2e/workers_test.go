package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/containerd"
	"github.com/warren-project/warren/internal/security/join"
	"github.com/warren-project/warren/internal/testutil"
)

// workerProc is a `warren cluster join` process with its own data dir and
// its own containerd.
type workerProc struct {
	t       testing.TB
	name    string
	dir     string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	exec    *containerd.Executor
	nodeID  string
	netns   string // its network namespace; "" for the host's
	addr    string // its advertised address; "" for 127.0.0.1
}

// joinWorker starts a worker that joins c with the worker token and waits
// until the manager lists it ready.
func (c *cluster) joinWorker(name string) *workerProc {
	c.t.Helper()
	// The nodes share this host's network namespace, where only one can
	// run the overlay: workers run without (TestOverlayAcrossHosts gives
	// each node a namespace of its own).
	return c.joinWorkerIn(name, "", "", "--overlay=false")
}

// joinWorkerIn joins a worker running in network namespace netns,
// advertising addr.
func (c *cluster) joinWorkerIn(name, netns, addr string, args ...string) *workerProc {
	c.t.Helper()
	resp, err := c.client.GetJoinToken(context.Background(), &api.GetJoinTokenRequest{Role: api.NodeRole_NODE_ROLE_WORKER})
	if err != nil {
		c.t.Fatal(err)
	}
	w := &workerProc{t: c.t, name: name, dir: filepath.Join(c.dir, name), netns: netns, addr: addr}
	w.logPath = filepath.Join(c.dir, name+".log")
	c.t.Cleanup(w.destroy)
	started := time.Now()
	w.start(append(args, "--token", resp.GetToken(), resp.GetManagerAddrs()[0])...)
	// The node's ID is in its data dir once it joined; then it must be
	// ready in the cluster.
	testutil.WaitFor(c.t, 60*time.Second, name+" ready in the cluster", func() bool {
		if w.nodeID == "" {
			w.nodeID = joinedNodeID(w.dir)
		}
		return w.nodeID != "" && c.readyNodes()[w.nodeID]
	})
	c.t.Logf("%s: cluster join → node ready in %v", name, time.Since(started).Round(time.Millisecond))
	if w.exec, err = containerd.New(context.Background(), containerd.Config{Address: filepath.Join(w.dir, "containerd", "containerd.sock")}); err != nil {
		c.t.Fatalf("connect to %s's containerd: %v", name, err)
	}
	return w
}

func (w *workerProc) start(args ...string) {
	w.t.Helper()
	logf, err := os.OpenFile(w.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	advertise := w.addr
	if advertise == "" {
		advertise = "127.0.0.1"
	}
	all := append([]string{"cluster", "join", "--data-dir", w.dir, "--advertise-addr", advertise,
		"--containerd-socket", filepath.Join(w.dir, "none.sock")}, args...)
	w.cmd = inNetns(w.netns, binary, all...)
	w.cmd.Stdout, w.cmd.Stderr = logf, logf
	if err := w.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	logf.Close()
	w.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(w.cmd, w.exited)
}

// kill ends the worker with SIGKILL: its containerd and containers stay.
func (w *workerProc) kill() {
	if w.cmd != nil {
		_ = w.cmd.Process.Kill()
		<-w.exited
		w.cmd = nil
	}
}

// destroy removes the worker's containers through its containerd, then
// stops that containerd and deletes the data dir.
func (w *workerProc) destroy() {
	if w.t.Failed() {
		data, _ := os.ReadFile(w.logPath)
		w.t.Logf("%s log:\n%s", w.name, tail(string(data), 6000))
	}
	w.kill()
	if w.exec != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if cs, err := w.exec.List(ctx, nil); err == nil {
			for _, ctr := range cs {
				_ = w.exec.Remove(ctx, ctr.ID)
			}
		}
		_ = w.exec.Close()
	}
	releaseNetns(w.t, w.dir)
	// The worker's own containerd runs in its own process group.
	_ = exec.Command("pkill", "-TERM", "-f", "containerd --config "+filepath.Join(w.dir, "containerd")).Run()
	testutil.WaitFor(w.t, 30*time.Second, w.name+"'s containerd stopped", func() bool {
		return exec.Command("pgrep", "-f", "containerd --config "+filepath.Join(w.dir, "containerd")).Run() != nil
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// readyNodes returns the IDs of the nodes the manager lists as ready.
func (c *cluster) readyNodes() map[string]bool {
	resp, err := c.client.ListNodes(context.Background(), &api.ListNodesRequest{})
	out := map[string]bool{}
	if err != nil {
		return out
	}
	for _, n := range resp.GetNodes() {
		if n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY {
			out[n.GetId()] = true
		}
	}
	return out
}

// runningPerNode counts a service's running current tasks per node ID.
func (c *cluster) runningPerNode(service string) map[string]int {
	out := map[string]int{}
	for _, task := range c.tasks(service) {
		if task.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING && task.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING {
			out[task.GetNodeId()]++
		}
	}
	return out
}

// A manager and two workers, each its own process with its own containerd:
// an image imported once reaches every node, a 6-replica service spreads
// 2/2/2, and a worker killed with SIGKILL has its tasks run elsewhere.
func TestWorkersSpreadAndFailover(t *testing.T) {
	c := newCluster(t, "--heartbeat-period", "1s", "--overlay=false")
	w1 := c.joinWorker("w1")
	w2 := c.joinWorker("w2")

	c.importBusybox(testImage)
	for _, w := range []*workerProc{w1, w2} {
		if ok, err := w.exec.HasImage(context.Background(), testImage); err != nil || !ok {
			t.Fatalf("%s does not hold the imported image: %v %v", w.name, ok, err)
		}
	}
	images := c.mustWarren("image", "ls")
	if !strings.Contains(images, testImage) {
		t.Fatalf("image ls does not list the image:\n%s", images)
	}

	c.mustWarren("service", "create", "web", "--image", testImage, "--replicas", "6", "--network", "host", "--", "sleep", "100000")
	got := c.runningPerNode("web")
	for _, id := range []string{c.nodeID(), w1.nodeID, w2.nodeID} {
		if got[id] != 2 {
			t.Fatalf("running per node = %v, want 2 on each of 3 nodes", got)
		}
	}
	if n := len(runningIn(t, w1.exec)); n != 2 {
		t.Fatalf("w1's containerd runs %d containers, want 2", n)
	}

	killed := time.Now()
	w1.kill()
	testutil.WaitFor(t, 60*time.Second, "6 tasks running on the manager and w2", func() bool {
		got := c.runningPerNode("web")
		return got[c.nodeID()]+got[w2.nodeID] == 6
	})
	t.Logf("worker killed → its tasks running elsewhere in %v", time.Since(killed).Round(10*time.Millisecond))
}

func runningIn(t testing.TB, e *containerd.Executor) []string {
	t.Helper()
	cs, err := e.List(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ctr := range cs {
		if ctr.State == runtime.StateRunning {
			ids = append(ids, ctr.ID)
		}
	}
	return ids
}

// joinedNodeID is the node ID a joined node keeps in its data dir, or "".
func joinedNodeID(dir string) string {
	if c, err := join.Load(dir); err == nil {
		return c.NodeID
	}
	return ""
}
