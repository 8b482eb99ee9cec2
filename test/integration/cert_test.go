package integration

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
	"github.com/warren-project/warren/internal/testutil"
)

// A node certificate that lives a minute is renewed before it expires,
// without a restart and without dropping the node's session.
func TestShortLivedCertificateRenews(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a real certificate renewal (up to ~40 s)")
	}
	c := newCluster(t)
	err := c.mgr.Store().Update(context.Background(), func(tx state.Tx) error {
		cl := tx.GetCluster()
		cl.Spec.NodeCertTtl = durationpb.New(time.Minute)
		return tx.Update(cl)
	})
	if err != nil {
		t.Fatal(err)
	}
	w := c.join("w1", nil)
	id := w.node.NodeID()
	notAfter := func() time.Time {
		var ts time.Time
		c.mgr.Store().View(func(tx state.ReadTx) { ts = tx.GetNode(id).GetStatus().GetCertNotAfter().AsTime() })
		return ts
	}
	first := notAfter()
	if time.Until(first) > 2*time.Minute {
		t.Fatalf("certificate expires %v, want within the 1-minute TTL", first)
	}
	svc := c.createService(replicated("web", 2))
	c.waitConverged(svc)

	testutil.WaitFor(t, 90*time.Second, "certificate renewed", func() bool { return notAfter().After(first) })
	c.waitNodeState(id, api.NodeState_NODE_STATE_READY)
	// The session survived: the node still runs its tasks and takes new ones.
	if got := c.runningByNode(svc); got[id] != 1 {
		t.Fatalf("running per node = %v after renewal, want 1 on the renewed node", got)
	}
	svc2 := c.createService(replicated("more", 2))
	c.waitConverged(svc2)
}
