package raftnode

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/state"
	"github.com/warren-project/warren/internal/testutil"
)

// startSeeded starts a member that does not bootstrap, with seed.
func startSeeded(t *testing.T, c testCA, dir string, store *state.MemoryStore, seed *Seed) *Node {
	t.Helper()
	srv, cli := c.tls(t, "m1", ca.RoleManager)
	n, err := Start(Config{
		NodeID: "m1", DataDir: dir, BindAddr: "127.0.0.1:0", ServerTLS: srv, ClientTLS: cli,
		FSM: &state.FSM{Store: store}, HeartbeatTimeout: 100 * time.Millisecond,
		ElectionTimeout: 100 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond, Seed: seed,
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	store.SetProposer(n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// seedOf is the encoded state of a store holding services 0..count-1.
func seedOf(t *testing.T, count int) (*Seed, *api.StoreSnapshot) {
	t.Helper()
	src := state.NewTestStore()
	createServices(t, src, 0, count)
	snap := src.Snapshot()
	data, err := proto.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	return &Seed{Data: data, Index: snap.GetIndex()}, snap
}

func serviceCount(s *state.MemoryStore) int {
	var n int
	s.View(func(tx state.ReadTx) { n = len(tx.ListServices()) })
	return n
}

// A member started on an empty dir with a seed holds the seed's state
// without replaying anything, leads alone, and goes on writing after it.
func TestSeedRestoresStateAndLeads(t *testing.T) {
	c := newTestCA(t)
	dir := t.TempDir()
	seed, snap := seedOf(t, 5)
	store := state.NewMemoryStore(nil)
	n := startSeeded(t, c, dir, store, seed)
	if !n.Seeded() {
		t.Fatal("Seeded() is false on an empty dir")
	}
	if got := serviceCount(store); got != 5 || store.Index() < snap.GetIndex() {
		t.Fatalf("after the seed: %d services at index %d; want 5 at index %d", got, store.Index(), snap.GetIndex())
	}
	info := n.Info()
	if len(info.GetServers()) != 1 || info.GetServers()[0].GetId() != "m1" || info.GetLastSnapshotIndex() != snap.GetIndex() {
		t.Fatalf("info = %v; want m1 alone, with the seed as snapshot %d", info, snap.GetIndex())
	}
	testutil.WaitFor(t, 10*time.Second, "the seeded member leading", n.IsLeader)
	createServices(t, store, 5, 7)
	if got := serviceCount(store); got != 7 || store.Index() <= snap.GetIndex() {
		t.Fatalf("after two writes: %d services at index %d; want 7 past index %d", got, store.Index(), snap.GetIndex())
	}
}

// A member whose dir already has Raft state keeps it: a leftover seed is
// ignored.
func TestSeedIgnoredWithExistingState(t *testing.T) {
	c := newTestCA(t)
	dir := t.TempDir()
	seed, _ := seedOf(t, 3)
	store := state.NewMemoryStore(nil)
	n := startSeeded(t, c, dir, store, seed)
	createServices(t, store, 3, 4)
	want := store.Index()
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}

	other, _ := seedOf(t, 10)
	again := state.NewMemoryStore(nil)
	n2 := startSeeded(t, c, dir, again, other)
	if n2.Seeded() {
		t.Fatal("Seeded() is true on a dir with Raft state")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if again.WaitForIndex(ctx, want-1) < want {
		t.Fatalf("the restarted member's state never reached index %d", want)
	}
	if got := serviceCount(again); got != 4 {
		t.Fatalf("restarted with a leftover seed: %d services, want the 4 it had", got)
	}
}
