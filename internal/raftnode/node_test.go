package raftnode

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/state"
)

type testCA struct{ ca *ca.CA }

func newTestCA(t *testing.T) testCA {
	t.Helper()
	c, err := ca.Generate("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{c}
}

func (c testCA) tls(t *testing.T, nodeID, role string) (*tls.Config, func(string) *tls.Config) {
	t.Helper()
	certPEM, keyPEM, err := c.ca.Issue(nodeID, role, "cluster", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.NewKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ca.ServerTLSConfig(c.ca.Pool(), kp.Certificate, true),
		func(name string) *tls.Config { return ca.ClientTLSConfig(c.ca.Pool(), kp.Certificate, name) }
}

func startNode(t *testing.T, c testCA, dir string, store *state.MemoryStore) *Node {
	t.Helper()
	srv, cli := c.tls(t, "m1", ca.RoleManager)
	n, err := Start(Config{
		NodeID: "m1", DataDir: dir, BindAddr: "127.0.0.1:0", ServerTLS: srv, ClientTLS: cli,
		FSM: &state.FSM{Store: store}, HeartbeatTimeout: 100 * time.Millisecond,
		ElectionTimeout: 100 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond,
		SnapshotThreshold: 16, TrailingLogs: 4,
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	store.SetProposer(n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func createServices(t *testing.T, store *state.MemoryStore, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		svc := &api.Service{Id: "s" + itoa(i), Meta: &api.Meta{}, Spec: &api.ServiceSpec{Name: "svc" + itoa(i)}}
		if err := store.Update(context.Background(), func(tx state.Tx) error { return tx.Create(svc) }); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
}

func itoa(i int) string { return string(rune('a'+i/26)) + string(rune('a'+i%26)) }

// A restarted member reads its snapshot and log back: the state survives.
func TestRestartKeepsState(t *testing.T) {
	c := newTestCA(t)
	dir := t.TempDir()
	store := state.NewMemoryStore(nil)
	n := startNode(t, c, dir, store)
	createServices(t, store, 0, 40) // past the snapshot threshold
	if err := n.Raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	createServices(t, store, 40, 45) // and some log after the snapshot
	want := store.Snapshot()
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}

	again := state.NewMemoryStore(nil)
	n2 := startNode(t, c, dir, again)
	defer n2.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for again.Index() < want.GetIndex() {
		if time.Now().After(deadline) {
			t.Fatalf("restarted store at index %d, want %d", again.Index(), want.GetIndex())
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := again.Snapshot()
	if len(got.GetServices()) != 45 {
		t.Fatalf("restarted store has %d services, want 45", len(got.GetServices()))
	}
	// Apply errors come back to the writer through Raft.
	dup := &api.Service{Id: "other", Meta: &api.Meta{}, Spec: &api.ServiceSpec{Name: "svcaa"}}
	err := again.Update(context.Background(), func(tx state.Tx) error { return tx.Create(dup) })
	if !errors.Is(err, state.ErrNameConflict) {
		t.Fatalf("duplicate name err = %v, want name conflict", err)
	}
	info := n2.Info()
	if info.State != "Leader" || info.LastSnapshotIndex == 0 || len(info.Servers) != 1 {
		t.Fatalf("info = %v", info)
	}
}

// Only managers of this CA may speak Raft to a member.
func TestTransportRefusesNonManagers(t *testing.T) {
	c := newTestCA(t)
	store := state.NewMemoryStore(nil)
	n := startNode(t, c, t.TempDir(), store)
	defer n.Shutdown()

	_, workerClient := c.tls(t, "w1", ca.RoleWorker)
	other := newTestCA(t)
	_, foreignClient := other.tls(t, "m9", ca.RoleManager)
	for name, cfg := range map[string]*tls.Config{
		"worker certificate":   workerClient("127.0.0.1"),
		"another CA's manager": foreignClient("127.0.0.1"),
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", n.Addr(), cfg)
			if err == nil {
				// TLS 1.3 reports the server's refusal on first read.
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if err == nil {
				t.Fatal("connection accepted")
			}
		})
	}
}

// A member that has just been elected has not yet applied what the
// earlier term committed: ConfirmLeader waits for it, so a read right
// after it sees every acknowledged write.
func TestConfirmLeaderSeesEarlierTerms(t *testing.T) {
	c := newTestCA(t)
	dir := t.TempDir()
	store := state.NewMemoryStore(nil)
	n := startNode(t, c, dir, store)
	createServices(t, store, 0, 300)
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	again := state.NewMemoryStore(nil)
	n2 := startNode(t, c, dir, again)
	defer n2.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n2.ConfirmLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(again.Snapshot().GetServices()); got != 300 {
		t.Fatalf("right after ConfirmLeader the state holds %d services, want the 300 acknowledged", got)
	}
}
