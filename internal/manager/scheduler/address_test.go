package scheduler

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// Overlay tasks get distinct addresses of their node's block as they are
// placed; a stopped task's address is free again; host-network tasks get
// none; a node without a block takes no overlay task, and says so.
func TestSchedulerAssignsOverlayAddresses(t *testing.T) {
	store := state.NewTestStore()
	n1 := mkNode("n1")
	n1.Network.Block = "10.200.7.0/29" // .2 to .6: five addresses
	create(t, store, n1)
	old := mkTask("old", "web", running("n1"), observed(api.TaskState_TASK_STATE_SHUTDOWN))
	old.Address = "10.200.7.2" // released: its task stopped
	create(t, store, old)
	create(t, store, objects(mkTasks(5, "web"))...)
	host := mkTask("host-1", "h")
	host.Spec.Container = &api.ContainerSpec{Network: "host"}
	create(t, store, host)
	startScheduler(t, store, testConfig())

	waitFor(t, store, "5 overlay tasks and 1 host task assigned", func(tx state.ReadTx) bool {
		n := 0
		for _, t := range tx.ListTasks(state.ByNode("n1")) {
			if t.GetStatus().GetState() == api.TaskState_TASK_STATE_ASSIGNED {
				n++
			}
		}
		return n == 6
	})
	seen := map[string]bool{}
	store.View(func(tx state.ReadTx) {
		for _, tk := range tx.ListTasks(state.ByService("web")) {
			if tk.GetId() == "old" {
				continue
			}
			a, err := netip.ParseAddr(tk.GetAddress())
			if err != nil || !netip.MustParsePrefix("10.200.7.0/29").Contains(a) || a.String() == "10.200.7.1" || seen[a.String()] {
				t.Errorf("task %s address %q: want a distinct task address of 10.200.7.0/29", tk.GetId(), tk.GetAddress())
			}
			seen[a.String()] = true
		}
		if a := tx.GetTask("host-1").GetAddress(); a != "" {
			t.Errorf("host-network task got address %s", a)
		}
	})
	if !seen["10.200.7.2"] {
		t.Errorf("the stopped task's address was not reused once the block filled: %v", seen)
	}

	// The block is full now: one more overlay task waits, saying why.
	create(t, store, mkTask("web-6", "web"))
	waitFor(t, store, "web-6 pending for want of an address", func(tx state.ReadTx) bool {
		return strings.Contains(tx.GetTask("web-6").GetStatus().GetMessage(), "no free address")
	})

	// A node without a block is not a candidate.
	n2 := mkNode("n2")
	n2.Network = nil
	create(t, store, n2)
	create(t, store, mkTask("other-1", "other", constraints("node.id==n2")))
	waitFor(t, store, "other-1 pending for want of a block", func(tx state.ReadTx) bool {
		return strings.Contains(tx.GetTask("other-1").GetStatus().GetMessage(), "no overlay network")
	})
}

// A node whose block is full is passed over, though it runs none of the
// service's tasks: the task goes to a node with a free address.
func TestSchedulerSkipsNodesWithFullBlocks(t *testing.T) {
	store := state.NewTestStore()
	full, roomy := mkNode("a-full"), mkNode("b-roomy")
	full.Network.Block = "10.200.7.0/29" // five addresses, all held below
	roomy.Network.Block = "10.200.8.0/24"
	create(t, store, full, roomy)
	for i := range 5 {
		tk := mkTask("other-"+string(rune('0'+i)), "other", running("a-full"))
		tk.Address = "10.200.7." + string(rune('2'+i))
		create(t, store, tk)
	}
	// More tasks than the full node: spreading alone would pick a-full.
	for i := range 7 {
		create(t, store, mkTask("mine-"+string(rune('0'+i)), "mine", running("b-roomy")))
	}
	create(t, store, mkTask("web-1", "web"))
	startScheduler(t, store, testConfig())
	waitFor(t, store, "web-1 assigned to the node with room", func(tx state.ReadTx) bool {
		tk := tx.GetTask("web-1")
		return tk.GetNodeId() == "b-roomy" && tk.GetAddress() != ""
	})
}
