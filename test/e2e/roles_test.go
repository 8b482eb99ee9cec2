package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/testutil"
	"github.com/warren-project/warren/pkg/client"
)

// runningPids are a node's running containers of service, by ID, with
// their main process.
func runningPids(t *testing.T, w *workerProc, service string) map[string]uint32 {
	t.Helper()
	cs, err := w.exec.List(context.Background(), map[string]string{"warren.service.name": service})
	if err != nil {
		t.Fatalf("list %s's containers: %v", w.name, err)
	}
	out := map[string]uint32{}
	for _, c := range cs {
		if c.State == runtime.StateRunning {
			out[c.ID] = c.Pid
		}
	}
	return out
}

// With the real binary and containerd: `node promote` turns a worker
// process into a manager in place (it serves the API on its socket and is
// a Raft voter), `node demote` turns it back (it leaves Raft, its socket
// and its Raft state go), and its containers run on through both, the
// same processes. The founder demotes itself through its own socket; then
// demoting the only manager left is refused with what to do.
func TestPromoteDemoteInPlace(t *testing.T) {
	c := newCluster(t, "--overlay=false")
	c.importBusybox(testImage)
	sock := filepath.Join(c.dir, "w1.sock")
	w := c.joinWorkerIn("w1", "", "", "--overlay=false", "--socket", sock, "--rest-addr", "",
		"--listen-addr", testutil.FreeAddr(t), "--raft-addr", testutil.FreeAddr(t))
	c.mustWarren("service", "create", "web", "--image", testImage, "--replicas", "4", "--network", "host", "--", "sleep", "1000")
	var before map[string]uint32
	testutil.WaitFor(t, 60*time.Second, "two of web's tasks running on w1", func() bool {
		before = runningPids(t, w, "web")
		return len(before) == 2
	})

	began := time.Now()
	out := c.mustWarren("node", "promote", w.nodeID)
	t.Logf("FIGURE node promote → a reachable Raft voter: %v", time.Since(began).Round(time.Millisecond))
	if !strings.Contains(out, "now a manager") {
		t.Fatalf("node promote printed %q", out)
	}
	wc, err := client.New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	testutil.WaitFor(t, 30*time.Second, "w1 answering on its socket, with 2 Raft voters", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := wc.GetClusterInfo(ctx, &api.GetClusterInfoRequest{})
		return err == nil && len(info.GetRaft().GetServers()) == 2
	})
	ls := c.mustWarren("node", "ls")
	if !strings.Contains(ls, "Reachable") || !strings.Contains(ls, "Leader") {
		t.Fatalf("node ls after the promotion shows no leader and reachable manager:\n%s", ls)
	}

	began = time.Now()
	out = c.mustWarren("node", "demote", w.nodeID)
	t.Logf("FIGURE node demote → out of Raft, a worker: %v", time.Since(began).Round(time.Millisecond))
	if !strings.Contains(out, "now a worker") {
		t.Fatalf("node demote printed %q", out)
	}
	testutil.WaitFor(t, 30*time.Second, "w1's manager socket gone", func() bool {
		_, err := os.Stat(sock)
		return os.IsNotExist(err)
	})
	testutil.WaitFor(t, 30*time.Second, "w1's Raft state and root key deleted", func() bool {
		_, raftErr := os.Stat(filepath.Join(w.dir, "raft"))
		_, keyErr := os.Stat(filepath.Join(w.dir, "ca", "ca.key"))
		return os.IsNotExist(raftErr) && os.IsNotExist(keyErr)
	})
	testutil.WaitFor(t, 30*time.Second, "w1 ready as a worker", func() bool { return c.readyNodes()[w.nodeID] })
	after := runningPids(t, w, "web")
	for id, pid := range before {
		if after[id] != pid || !alive(pid) {
			t.Errorf("container %s: pid %d before the role changes, %d after (alive: %v)", id, pid, after[id], alive(pid))
		}
	}

	// The founder demotes itself through its own socket: the CLI follows
	// until its manager stops answering, and says so. The one manager left
	// refuses to be demoted.
	c.mustWarren("node", "promote", w.nodeID)
	founder := c.nodeID()
	out = c.mustWarren("node", "demote", founder)
	if !strings.Contains(out, "stopped answering as it became a worker") {
		t.Fatalf("self-demotion printed %q", out)
	}
	testutil.WaitFor(t, 30*time.Second, "the founder out of Raft", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := wc.GetClusterInfo(ctx, &api.GetClusterInfoRequest{})
		return err == nil && len(info.GetRaft().GetServers()) == 1
	})
	w1 := &cluster{t: t, sock: sock}
	_, stderr, err := w1.warren("node", "demote", w.nodeID)
	if err == nil || !strings.Contains(stderr, "only manager") {
		t.Fatalf("demoting the only manager: err %v, stderr %q; want a refusal naming the only manager", err, stderr)
	}
}
