package manager

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime/fake"
	"github.com/warren-project/warren/internal/state"
	"github.com/warren-project/warren/internal/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// joinManagers starts n managers: the first makes the cluster, the others
// join it with the manager token.
func joinManagers(t *testing.T, n int) []*testManager {
	t.Helper()
	withImage := func() *fake.Executor {
		e := fake.New()
		e.AddImage(image)
		return e
	}
	first := startManager(t, shortDir(t), withImage())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := first.localClient(t).GetJoinToken(ctx, &api.GetJoinTokenRequest{Role: api.NodeRole_NODE_ROLE_MANAGER})
	if err != nil {
		t.Fatal(err)
	}
	ms := []*testManager{first}
	for range n - 1 {
		ms = append(ms, startManagerWith(t, shortDir(t), withImage(), func(c *Config) {
			c.JoinAddr, c.JoinToken = tok.GetManagerAddrs()[0], tok.GetToken()
		}))
	}
	return ms
}

func leaderOf(ms []*testManager) *testManager {
	for _, m := range ms {
		if m.raft != nil && m.raft.IsLeader() {
			return m
		}
	}
	return nil
}

// Three managers: the two that join with the manager token become voters
// and hold the state; a write sent to a follower is forwarded to the
// leader; every manager's agent runs tasks; when the leader dies, another
// is elected, writes are accepted again, and its tasks run elsewhere.
func TestThreeManagersFailover(t *testing.T) {
	ms := joinManagers(t, 3)
	for _, m := range ms {
		if got := len(m.raft.Info().GetServers()); got != 3 {
			t.Fatalf("manager %s sees %d Raft servers, want 3", m.NodeID(), got)
		}
	}
	leader := leaderOf(ms)
	if leader == nil {
		t.Fatal("no leader")
	}
	var follower *testManager
	for _, m := range ms {
		if m != leader {
			follower = m
			break
		}
	}
	// A write through a follower's API, visible on every manager.
	svc := createService(t, follower.localClient(t), "web", 6)
	for _, m := range ms {
		testutil.WaitFor(t, 10*time.Second, "the service on manager "+m.NodeID(), func() bool {
			var ok bool
			m.store.View(func(tx state.ReadTx) { ok = tx.GetService(svc.GetId()) != nil })
			return ok
		})
	}
	for _, m := range ms {
		testutil.WaitFor(t, 20*time.Second, "two tasks running on manager "+m.NodeID(), func() bool {
			return runningContainers(t, m.exec) == 2
		})
	}

	// Logs need the nodes' sessions, which the leader holds: a follower
	// relays the call.
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := follower.localClient(t).Logs(lctx, &api.LogsRequest{Service: "web"}, func(*api.LogMessage) error { return nil })
	lcancel()
	if err != nil {
		t.Fatalf("logs through a follower: %v", err)
	}

	killed := time.Now()
	leader.stop()
	var rest []*testManager
	for _, m := range ms {
		if m != leader {
			rest = append(rest, m)
		}
	}
	c := rest[0].localClient(t)
	var accepted time.Time
	for i := 0; accepted.IsZero(); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
			Name: fmt.Sprintf("after-%d", i),
			Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox", Args: []string{"sleep", "1000"}}},
		}})
		cancel()
		if err == nil {
			accepted = time.Now()
		} else if time.Since(killed) > 30*time.Second {
			t.Fatalf("no write accepted 30s after the leader died: %v", err)
		}
	}
	t.Logf("FIGURE failover (in process, Raft timeouts 100 ms): leader killed → first accepted write: %v", accepted.Sub(killed).Round(time.Millisecond))
	if leaderOf(rest) == nil {
		t.Fatal("no new leader among the survivors")
	}
	// The dead manager's node goes down and its two tasks run on the others.
	testutil.WaitFor(t, 30*time.Second, "web's 6 tasks running on the two survivors", func() bool {
		n := 0
		rest[0].store.View(func(tx state.ReadTx) {
			for _, tk := range tx.ListTasks(state.ByService(svc.GetId())) {
				if tk.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING && tk.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING &&
					tk.GetNodeId() != leader.NodeID() {
					n++
				}
			}
		})
		return n == 6
	})
}

// With two of three managers gone, the survivor still answers reads, and
// refuses writes quickly, saying how many managers it takes.
func TestQuorumLossFailsWritesFast(t *testing.T) {
	ms := joinManagers(t, 3)
	survivor := ms[2]
	createService(t, survivor.localClient(t), "before", 1)
	ms[0].stop()
	ms[1].stop()
	c := survivor.localClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.ListServices(ctx, &api.ListServicesRequest{}); err != nil {
		t.Fatalf("a read without quorum: %v", err)
	}
	start := time.Now()
	_, err := c.CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
		Name: "after", Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox"}},
	}})
	took := time.Since(start)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "2 of the 3 managers") {
		t.Fatalf("a write without quorum: %v; want Unavailable saying 2 of the 3 managers are needed", err)
	}
	if took > 10*time.Second {
		t.Fatalf("the write took %v to fail", took)
	}
	t.Logf("a write without quorum failed in %v: %v", took.Round(time.Millisecond), err)
}

// After losing two of three managers for good, the survivor restarted
// with ForceNewCluster leads alone, with the state it had.
func TestForceNewClusterKeepsState(t *testing.T) {
	ms := joinManagers(t, 3)
	survivor := ms[2]
	svc := createService(t, survivor.localClient(t), "kept", 1)
	for _, m := range ms {
		m.stop()
	}
	again := startManagerWith(t, survivor.dir, survivor.exec, func(c *Config) { c.ForceNewCluster = true })
	if !again.raft.IsLeader() || len(again.raft.Info().GetServers()) != 1 {
		t.Fatalf("after --force-new-cluster: leader %v, servers %v; want the only member, leading", again.raft.IsLeader(), again.raft.Info().GetServers())
	}
	c := again.localClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.GetService(ctx, &api.GetServiceRequest{Service: svc.GetId()}); err != nil {
		t.Fatalf("the service made before: %v", err)
	}
	createService(t, c, "new", 1)
}

// A manager joining a cluster whose log was compacted installs the
// leader's snapshot, and holds the whole state.
func TestJoinInstallsSnapshot(t *testing.T) {
	exec := fake.New()
	exec.AddImage(image)
	first := startManagerWith(t, shortDir(t), exec, func(c *Config) {
		c.SnapshotThreshold, c.RaftTrailingLogs, c.RaftSnapshotInterval = 32, 8, 200*time.Millisecond
	})
	c := first.localClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 80 {
		if _, err := c.CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
			Name: fmt.Sprintf("s%d", i),
			Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{}},
			Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox", Network: "host"}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 30*time.Second, "a snapshot on the first manager", func() bool {
		return first.raft.Info().GetLastSnapshotIndex() > 0
	})
	tok, err := c.GetJoinToken(ctx, &api.GetJoinTokenRequest{Role: api.NodeRole_NODE_ROLE_MANAGER})
	if err != nil {
		t.Fatal(err)
	}
	second := startManagerWith(t, shortDir(t), fake.New(), func(cfg *Config) {
		cfg.JoinAddr, cfg.JoinToken = tok.GetManagerAddrs()[0], tok.GetToken()
	})
	if got := second.raft.Info().GetLastSnapshotIndex(); got == 0 {
		t.Errorf("the joined manager has no snapshot: it replayed the log instead")
	}
	var n int
	second.store.View(func(tx state.ReadTx) { n = len(tx.ListServices()) })
	if n != 80 {
		t.Fatalf("the joined manager holds %d services, want 80", n)
	}
}

// An image archive imported through one manager is copied to every other,
// so that it outlives that manager and any leader can serve it.
func TestArchivesCopiedToEveryManager(t *testing.T) {
	ms := joinManagers(t, 3)
	var via *testManager
	for _, m := range ms {
		if !m.raft.IsLeader() {
			via = m
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := via.localClient(t).ImportImage(ctx, strings.NewReader("docker.io/library/app:1\n"), nil, nil); err != nil {
		t.Fatal(err)
	}
	var digest string
	via.store.View(func(tx state.ReadTx) { digest = tx.GetCluster().GetImageArchives()[0].GetDigest() })
	for _, m := range ms {
		path := filepath.Join(m.cfg.DataDir, "images", "sha256", strings.TrimPrefix(digest, "sha256:")+".tar")
		testutil.WaitFor(t, 20*time.Second, "the archive on manager "+m.NodeID(), func() bool {
			_, err := os.Stat(path)
			return err == nil
		})
	}
}

// Five managers survive the loss of two: a follower first (the leader
// stays, writes go on), then the leader (another is elected). Writes sent
// to any survivor are accepted and reach every survivor. A third loss
// leaves two of five: writes fail, saying three are needed.
func TestFiveManagersLoseTwo(t *testing.T) {
	ms := joinManagers(t, 5)
	leader := leaderOf(ms)
	if leader == nil {
		t.Fatal("no leader")
	}
	var live []*testManager
	stopped := false
	for _, m := range ms {
		if m != leader && !stopped {
			m.stop() // a follower
			stopped = true
			continue
		}
		live = append(live, m)
	}
	write := func(via *testManager, name string) {
		t.Helper()
		var err error
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = via.localClient(t).CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
				Name: name, Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: image, Network: "host"}},
			}})
			cancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("write %s through %s: %v", name, via.NodeID(), err)
		}
		for _, m := range live {
			testutil.WaitFor(t, 10*time.Second, name+" on manager "+m.NodeID(), func() bool {
				var ok bool
				m.store.View(func(tx state.ReadTx) { _, err := tx.LookupService(name); ok = err == nil })
				return ok
			})
		}
	}
	write(live[len(live)-1], "after-follower-loss")
	if leaderOf(live) != leader {
		t.Fatal("losing a follower changed the leader")
	}

	leader.stop()
	live = slices.DeleteFunc(live, func(m *testManager) bool { return m == leader })
	for i, m := range live {
		write(m, fmt.Sprintf("after-leader-loss-%d", i))
	}
	if leaderOf(live) == nil {
		t.Fatal("no leader among the three survivors")
	}

	live[0].stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	// A write in flight when a leader died may come back Unknown (it may
	// have been applied); once the survivors see no leader, they refuse.
	for i := 0; i == 0 || status.Code(err) == codes.Unknown; i++ {
		_, err = live[1].localClient(t).CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
			Name: fmt.Sprintf("no-quorum-%d", i), Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: image}},
		}})
	}
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "3 of the 5 managers") {
		t.Fatalf("a write with two of five managers: %v; want Unavailable saying 3 of the 5 are needed", err)
	}
}

// --manager-only: a manager made so (at init, or joining) is drained and
// runs no tasks; the others run them all.
func TestManagerOnlyRunsNoTasks(t *testing.T) {
	withImage := func() *fake.Executor {
		e := fake.New()
		e.AddImage(image)
		return e
	}
	first := startManagerWith(t, shortDir(t), withImage(), func(c *Config) { c.ManagerOnly = true })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := first.localClient(t).GetJoinToken(ctx, &api.GetJoinTokenRequest{Role: api.NodeRole_NODE_ROLE_MANAGER})
	if err != nil {
		t.Fatal(err)
	}
	join := func(managerOnly bool) *testManager {
		return startManagerWith(t, shortDir(t), withImage(), func(c *Config) {
			c.JoinAddr, c.JoinToken, c.ManagerOnly = tok.GetManagerAddrs()[0], tok.GetToken(), managerOnly
		})
	}
	second, third := join(false), join(true)
	createService(t, first.localClient(t), "web", 4)
	testutil.WaitFor(t, 30*time.Second, "web's 4 tasks running on the one manager that runs tasks", func() bool {
		return runningContainers(t, second.exec) == 4
	})
	for _, m := range []*testManager{first, third} {
		if n := runningContainers(t, m.exec); n != 0 {
			t.Errorf("manager-only %s runs %d containers", m.NodeID(), n)
		}
		got, err := first.localClient(t).GetNode(ctx, &api.GetNodeRequest{Node: m.NodeID()})
		if err != nil || got.GetNode().GetSpec().GetAvailability() != api.NodeAvailability_NODE_AVAILABILITY_DRAIN {
			t.Errorf("manager-only %s: availability %v (%v), want drain", m.NodeID(), got.GetNode().GetSpec().GetAvailability(), err)
		}
	}
}

// A deposed leader stops its control pipeline at once: its dispatcher
// refuses node sessions (they move to the new leader's), while the new
// leader's accepts them.
func TestDeposedLeaderStopsItsPipeline(t *testing.T) {
	ms := joinManagers(t, 3)
	old := leaderOf(ms)
	if old == nil {
		t.Fatal("no leader")
	}
	if err := old.raft.Raft.LeadershipTransfer().Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	deposed := time.Now()
	var next *testManager
	testutil.WaitFor(t, 10*time.Second, "another leader", func() bool {
		next = leaderOf(ms)
		return next != nil && next != old
	})
	session := func(m *testManager) error {
		conn, err := m.inproc.dial()
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stream, err := api.NewDispatcherClient(conn).Session(ctx)
		if err != nil {
			return err
		}
		reg := &api.RegisterRequest{NodeId: m.NodeID(), Addr: "127.0.0.1"}
		if err := stream.Send(&api.SessionRequest{Msg: &api.SessionRequest_Register{Register: reg}}); err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	testutil.WaitFor(t, 5*time.Second, "the deposed leader's dispatcher refusing sessions", func() bool {
		err := session(old)
		return status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "not running")
	})
	t.Logf("deposed leader's dispatcher stopped within %v", time.Since(deposed).Round(time.Millisecond))
	if err := session(next); err != nil {
		t.Fatalf("a session with the new leader: %v", err)
	}
}

// The founder restarted while another manager leads comes back as a
// follower and catches up: it must not take the cluster it made for
// missing while its log is still being replayed.
func TestFounderRestartsAsFollower(t *testing.T) {
	ms := joinManagers(t, 3)
	founder := ms[0]
	if founder.raft.IsLeader() {
		if err := founder.raft.Raft.LeadershipTransfer().Error(); err != nil {
			t.Fatal(err)
		}
	}
	createService(t, ms[1].localClient(t), "web", 0)
	cfg := founder.cfg
	founder.stop()
	again := startManagerWith(t, founder.dir, founder.exec, func(c *Config) {
		c.ListenAddr, c.RaftAddr, c.RESTAddr = cfg.ListenAddr, cfg.RaftAddr, cfg.RESTAddr
	})
	// Ready (startManagerWith fails otherwise), then caught up.
	testutil.WaitFor(t, 10*time.Second, "the restarted founder holding the service made while it was down", func() bool {
		var ok bool
		again.store.View(func(tx state.ReadTx) { _, err := tx.LookupService("web"); ok = err == nil })
		return ok
	})
}
