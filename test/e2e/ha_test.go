package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/testutil"
	"github.com/warren-project/warren/pkg/client"
)

// haManager is one manager process of a multi-manager test: the founder
// (through cluster) or one that joined (through workerProc, which runs
// `cluster join`).
type haManager struct {
	name   string
	nodeID string
	sock   string
	client *client.Client
	kill   func()
	start  func()
}

// joinManager joins a manager process with the manager token, in this
// host's network namespace. Managers in these tests run without the
// overlay: they test Raft, not the network.
func (c *cluster) joinManager(name string) *haManager {
	c.t.Helper()
	return c.joinManagerIn(name, "", "")
}

// joinManagerIn joins a manager process running in network namespace
// netns with address addr ("" and "": the host's namespace, loopback).
func (c *cluster) joinManagerIn(name, netns, addr string) *haManager {
	c.t.Helper()
	resp, err := c.client.GetJoinToken(context.Background(), &api.GetJoinTokenRequest{Role: api.NodeRole_NODE_ROLE_MANAGER})
	if err != nil {
		c.t.Fatal(err)
	}
	w := &workerProc{t: c.t, name: name, dir: filepath.Join(c.dir, name), logPath: filepath.Join(c.dir, name+".log"), netns: netns, addr: addr}
	c.t.Cleanup(w.destroy)
	sock := filepath.Join(c.dir, name+".sock")
	listen, raftAddr := testutil.FreeAddr(c.t), testutil.FreeAddr(c.t)
	if addr != "" {
		listen, raftAddr = net.JoinHostPort(addr, "2377"), net.JoinHostPort(addr, "2379")
	}
	args := []string{"--overlay=false", "--socket", sock, "--rest-addr", "",
		"--listen-addr", listen, "--raft-addr", raftAddr}
	w.start(append(slices.Clone(args), "--token", resp.GetToken(), resp.GetManagerAddrs()[0])...)
	m := &haManager{name: name, sock: sock, kill: w.kill}
	m.start = func() { w.start(args...) }
	if m.client, err = client.New("unix://" + sock); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { m.client.Close() })
	m.waitAnswering(c.t)
	info, err := m.client.GetClusterInfo(context.Background(), &api.GetClusterInfoRequest{})
	if err != nil {
		c.t.Fatal(err)
	}
	m.nodeID = info.GetManagerNodeId()
	return m
}

// founder is the cluster's first manager, as an haManager.
func (c *cluster) founder() *haManager {
	c.t.Helper()
	return &haManager{name: "m0", nodeID: c.nodeID(), sock: c.sock, client: c.client, start: c.start,
		kill: func() { _ = c.cmd.Process.Kill(); <-c.exited; c.cmd = nil }}
}

func (m *haManager) waitAnswering(t testing.TB) {
	t.Helper()
	testutil.WaitFor(t, 60*time.Second, m.name+" answering", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := m.client.GetClusterInfo(ctx, &api.GetClusterInfoRequest{})
		return err == nil
	})
}

// leaderID asks the managers in turn who leads.
func leaderID(ms []*haManager) string {
	for _, m := range ms {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := m.client.GetClusterInfo(ctx, &api.GetClusterInfoRequest{})
		cancel()
		if err == nil && info.GetRaft().GetLeaderId() != "" {
			return info.GetRaft().GetLeaderId()
		}
	}
	return ""
}

// Three manager processes; the leader is killed with SIGKILL ten times
// (and restarted, catching up) while a client writes through the others:
// a new leader takes writes within seconds every time, and every write the
// client saw acknowledged is on every manager at the end.
func TestManagersSurviveLeaderKills(t *testing.T) {
	c := newCluster(t, "--overlay=false")
	c.importBusybox(testImage)
	ms := []*haManager{c.founder(), c.joinManager("m1"), c.joinManager("m2")}

	var acked []string
	write := func(via *haManager, name string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := via.client.CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
			Name: name,
			Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 0}},
			Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: testImage, Network: "host"}},
		}})
		if err == nil {
			acked = append(acked, resp.GetService().GetId())
		}
		return err
	}
	var took []time.Duration
	for round := range 10 {
		id := leaderID(ms)
		i := slices.IndexFunc(ms, func(m *haManager) bool { return m.nodeID == id })
		if i < 0 {
			t.Fatalf("round %d: no leader among the managers (leader %q)", round, id)
		}
		leader := ms[i]
		if err := write(leader, fmt.Sprintf("r%d-before", round)); err != nil {
			t.Fatalf("round %d: write to the leader: %v", round, err)
		}
		killed := time.Now()
		leader.kill()
		survivors := slices.Delete(slices.Clone(ms), i, i+1)
		for n := 0; ; n++ {
			if err := write(survivors[n%2], fmt.Sprintf("r%d-after-%d", round, n)); err == nil {
				break
			}
			if time.Since(killed) > 60*time.Second {
				t.Fatalf("round %d: no write accepted within 60 s of killing the leader", round)
			}
			time.Sleep(50 * time.Millisecond)
		}
		took = append(took, time.Since(killed))
		leader.start()
		leader.waitAnswering(t)
	}
	slices.Sort(took)
	t.Logf("FIGURE failover: 3 managers, leader killed with SIGKILL %d times: kill → first accepted write min %v, median %v, max %v",
		len(took), took[0].Round(time.Millisecond), took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))

	// Every acknowledged write is on every manager once they have caught up.
	for _, m := range ms {
		testutil.WaitFor(t, 30*time.Second, m.name+" holding every acknowledged service", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := m.client.ListServices(ctx, &api.ListServicesRequest{})
			if err != nil {
				return false
			}
			have := map[string]bool{}
			for _, s := range resp.GetServices() {
				have[s.GetId()] = true
			}
			for _, id := range acked {
				if !have[id] {
					return false
				}
			}
			return true
		})
	}
	t.Logf("%d acknowledged writes, all on the 3 managers", len(acked))
}
