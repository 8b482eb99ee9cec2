package apiserver

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/state"
)

const testManagerID = "mgr0000000000000000000001"

// newAdminServer returns a server over a cluster with a CA, its manager
// node "manager-1" and two ready workers, "worker-1" and "worker-2".
func newAdminServer(t *testing.T) (*Server, *state.MemoryStore, *ca.CA) {
	t.Helper()
	root, err := ca.Generate("test", 0)
	if err != nil {
		t.Fatal(err)
	}
	store := state.NewTestStore()
	err = store.Update(context.Background(), func(tx state.Tx) error {
		if err := tx.Create(&api.Cluster{Id: "cluster-1", Meta: &api.Meta{}, Name: "warren", CaCert: root.CertPEM(), CaFingerprint: root.Fingerprint()}); err != nil {
			return err
		}
		for _, n := range []*api.Node{
			testNode(testManagerID, "manager-1", api.NodeRole_NODE_ROLE_MANAGER),
			testNode("wka0000000000000000000001", "worker-1", api.NodeRole_NODE_ROLE_WORKER),
			testNode("wkb0000000000000000000002", "worker-2", api.NodeRole_NODE_ROLE_WORKER),
		} {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{
		Store: store, Images: fakeImages{}, ManagerNodeID: testManagerID, CA: root,
		ManagerAddrs: func() []string { return []string{"10.0.0.1:2377"} },
	})
	return s, store, root
}

func testNode(id, hostname string, role api.NodeRole) *api.Node {
	return &api.Node{
		Id: id, Meta: &api.Meta{}, Spec: &api.NodeSpec{Role: role}, Role: role,
		Description: &api.NodeDescription{Hostname: hostname},
		Status:      &api.NodeStatus{State: api.NodeState_NODE_STATE_READY, Addr: "10.0.0.9"},
	}
}

func getNode(t *testing.T, store *state.MemoryStore, hostname string) *api.Node {
	t.Helper()
	var n *api.Node
	var err error
	store.View(func(tx state.ReadTx) { n, err = tx.LookupNode(hostname) })
	if err != nil {
		t.Fatalf("node %s: %v", hostname, err)
	}
	return n
}

func wantCode(t *testing.T, err error, code codes.Code, text string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(err.Error(), text) {
		t.Fatalf("err = %v, want %v mentioning %q", err, code, text)
	}
}

func TestUpdateNodeAvailabilityAndLabels(t *testing.T) {
	s, store, _ := newAdminServer(t)
	ctx := context.Background()
	before := getNode(t, store, "worker-1")
	resp, err := s.UpdateNode(ctx, &api.UpdateNodeRequest{
		Node: "worker-1", NodeVersion: before.GetMeta().GetVersion(),
		Spec: &api.NodeSpec{Role: api.NodeRole_NODE_ROLE_WORKER, Availability: api.NodeAvailability_NODE_AVAILABILITY_DRAIN, Labels: map[string]string{"zone": "edge"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := getNode(t, store, "worker-1")
	if got.GetSpec().GetAvailability() != api.NodeAvailability_NODE_AVAILABILITY_DRAIN || got.GetSpec().GetLabels()["zone"] != "edge" {
		t.Fatalf("stored spec = %v, want drain with zone=edge", got.GetSpec())
	}
	if got.GetMeta().GetVersion() <= before.GetMeta().GetVersion() || resp.GetNode().GetMeta().GetVersion() != got.GetMeta().GetVersion() {
		t.Fatalf("versions: before %d, stored %d, answered %d", before.GetMeta().GetVersion(), got.GetMeta().GetVersion(), resp.GetNode().GetMeta().GetVersion())
	}
	if got.GetStatus().GetState() != api.NodeState_NODE_STATE_READY || got.GetDescription().GetHostname() != "worker-1" {
		t.Fatalf("the update touched more than the spec: %v", got)
	}
	// An unspecified role means "unchanged"; labels are replaced as a whole.
	if _, err := s.UpdateNode(ctx, &api.UpdateNodeRequest{Node: got.GetId()[:6], Spec: &api.NodeSpec{}}); err != nil {
		t.Fatal(err)
	}
	got = getNode(t, store, "worker-1")
	if got.GetSpec().GetAvailability() != api.NodeAvailability_NODE_AVAILABILITY_ACTIVE || len(got.GetSpec().GetLabels()) != 0 || got.GetSpec().GetRole() != api.NodeRole_NODE_ROLE_WORKER {
		t.Fatalf("stored spec = %v, want an active worker without labels", got.GetSpec())
	}
}

func TestUpdateNodeRefused(t *testing.T) {
	s, store, _ := newAdminServer(t)
	ctx := context.Background()
	stale := getNode(t, store, "worker-1").GetMeta().GetVersion()
	if _, err := s.UpdateNode(ctx, &api.UpdateNodeRequest{Node: "worker-1", Spec: &api.NodeSpec{Labels: map[string]string{"a": "b"}}}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("k", maxLabelKey+1)
	cases := []struct {
		name string
		req  *api.UpdateNodeRequest
		code codes.Code
		want string
	}{
		{"stale version", &api.UpdateNodeRequest{Node: "worker-1", NodeVersion: stale, Spec: &api.NodeSpec{}}, codes.FailedPrecondition, "read it again"},
		{"demote the only manager", &api.UpdateNodeRequest{Node: "manager-1", Spec: &api.NodeSpec{Role: api.NodeRole_NODE_ROLE_WORKER}}, codes.FailedPrecondition, "only manager: promote another node first"},
		{"bad role", &api.UpdateNodeRequest{Node: "worker-1", Spec: &api.NodeSpec{Role: 7}}, codes.InvalidArgument, "role"},
		{"no spec", &api.UpdateNodeRequest{Node: "worker-1"}, codes.InvalidArgument, "no node spec"},
		{"empty key", &api.UpdateNodeRequest{Node: "worker-1", Spec: &api.NodeSpec{Labels: map[string]string{" ": "x"}}}, codes.InvalidArgument, "key is empty"},
		{"= in key", &api.UpdateNodeRequest{Node: "worker-1", Spec: &api.NodeSpec{Labels: map[string]string{"a=b": "x"}}}, codes.InvalidArgument, "'='"},
		{"long key", &api.UpdateNodeRequest{Node: "worker-1", Spec: &api.NodeSpec{Labels: map[string]string{long: "x"}}}, codes.InvalidArgument, "128"},
		{"long value", &api.UpdateNodeRequest{Node: "worker-1", Spec: &api.NodeSpec{Labels: map[string]string{"k": strings.Repeat("v", maxLabelValue+1)}}}, codes.InvalidArgument, "256"},
		{"bad availability", &api.UpdateNodeRequest{Node: "worker-1", Spec: &api.NodeSpec{Availability: 9}}, codes.InvalidArgument, "availability"},
		{"unknown node", &api.UpdateNodeRequest{Node: "nope", Spec: &api.NodeSpec{}}, codes.NotFound, "nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := store.Index()
			_, err := s.UpdateNode(ctx, c.req)
			wantCode(t, err, c.code, c.want)
			if store.Index() != before {
				t.Fatal("a refused update changed the state")
			}
		})
	}
	// Limits are inclusive.
	ok := map[string]string{strings.Repeat("k", maxLabelKey): strings.Repeat("v", maxLabelValue), "empty-value": ""}
	if _, err := s.UpdateNode(ctx, &api.UpdateNodeRequest{Node: "worker-1", Spec: &api.NodeSpec{Labels: ok}}); err != nil {
		t.Fatalf("labels at the limits refused: %v", err)
	}
}

func TestRemoveNode(t *testing.T) {
	s, store, _ := newAdminServer(t)
	ctx := context.Background()
	// worker-2 went down: removable without force.
	if err := store.Update(ctx, func(tx state.Tx) error {
		n := tx.GetNode("wkb0000000000000000000002")
		n.Status.State = api.NodeState_NODE_STATE_DOWN
		return tx.Update(n)
	}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		node  string
		force bool
		code  codes.Code
		want  string
	}{
		{"ready without force", "worker-1", false, codes.FailedPrecondition, "warren node update --availability drain worker-1"},
		{"this manager", "manager-1", true, codes.FailedPrecondition, "node manager-1 is the manager answering this call"},
		{"unknown", "nope", true, codes.NotFound, "nope"},
		{"ready with force", "worker-1", true, codes.OK, ""},
		{"down", "worker-2", false, codes.OK, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := store.Index()
			_, err := s.RemoveNode(ctx, &api.RemoveNodeRequest{Node: c.node, Force: c.force})
			if c.code != codes.OK {
				wantCode(t, err, c.code, c.want)
				if store.Index() != before {
					t.Fatal("a refused removal changed the state")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			store.View(func(tx state.ReadTx) {
				if _, err := tx.LookupNode(c.node); err == nil {
					t.Fatalf("node %s still stored", c.node)
				}
			})
		})
	}
}

type fakeMembership struct {
	removed []string
	refuse  error // what CheckDemotion says
}

func (f *fakeMembership) RemoveManager(_ context.Context, id string) error {
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeMembership) CheckDemotion(string) error { return f.refuse }

// Promotion and demotion set the role asked for; the leader carries them
// out. A demotion the membership refuses (quorum) changes nothing and says
// why; two demotions cannot leave the cluster without a manager.
func TestUpdateNodeRole(t *testing.T) {
	s, store, _ := newAdminServer(t)
	raft := &fakeMembership{}
	s.cfg.Managers = raft
	ctx := context.Background()
	setRole := func(node string, role api.NodeRole) error {
		_, err := s.UpdateNode(ctx, &api.UpdateNodeRequest{Node: node, Spec: &api.NodeSpec{Role: role}})
		return err
	}
	for _, w := range []string{"worker-1", "worker-2"} {
		if err := setRole(w, api.NodeRole_NODE_ROLE_MANAGER); err != nil {
			t.Fatalf("promote %s: %v", w, err)
		}
		n := getNode(t, store, w)
		if n.GetSpec().GetRole() != api.NodeRole_NODE_ROLE_MANAGER || n.IsManager() {
			t.Fatalf("%s after promote: spec role %v, current %v; want manager asked for, still a worker until the leader moves it", w, n.GetSpec().GetRole(), n.CurrentRole())
		}
	}

	raft.refuse = errors.New("demoting node x would leave 2 managers of which 1 are reachable")
	before := store.Index()
	wantCode(t, setRole("manager-1", api.NodeRole_NODE_ROLE_WORKER), codes.FailedPrecondition, "1 are reachable")
	if store.Index() != before {
		t.Fatal("a refused demotion changed the state")
	}
	raft.refuse = nil
	for _, m := range []string{"manager-1", "worker-1"} {
		if err := setRole(m, api.NodeRole_NODE_ROLE_WORKER); err != nil {
			t.Fatalf("demote %s: %v", m, err)
		}
	}
	wantCode(t, setRole("worker-2", api.NodeRole_NODE_ROLE_WORKER), codes.FailedPrecondition, "only manager")
}

// A manager that is down leaves Raft, then the state; one that is up, and
// the answering manager itself, are refused.
func TestRemoveManager(t *testing.T) {
	s, store, _ := newAdminServer(t)
	raft := &fakeMembership{}
	s.cfg.Managers = raft
	ctx := context.Background()
	if err := store.Update(ctx, func(tx state.Tx) error {
		down := testNode("mgr0000000000000000000002", "manager-2", api.NodeRole_NODE_ROLE_MANAGER)
		down.Status.State = api.NodeState_NODE_STATE_DOWN
		up := testNode("mgr0000000000000000000003", "manager-3", api.NodeRole_NODE_ROLE_MANAGER)
		up.Status.State = api.NodeState_NODE_STATE_READY
		if err := tx.Create(down); err != nil {
			return err
		}
		return tx.Create(up)
	}); err != nil {
		t.Fatal(err)
	}
	_, err := s.RemoveNode(ctx, &api.RemoveNodeRequest{Node: "manager-3", Force: true})
	wantCode(t, err, codes.FailedPrecondition, "stop warren there first")
	_, err = s.RemoveNode(ctx, &api.RemoveNodeRequest{Node: "manager-1", Force: true})
	wantCode(t, err, codes.FailedPrecondition, "the manager answering this call")
	if _, err := s.RemoveNode(ctx, &api.RemoveNodeRequest{Node: "manager-2"}); err != nil {
		t.Fatalf("remove the dead manager: %v", err)
	}
	if len(raft.removed) != 1 || raft.removed[0] != "mgr0000000000000000000002" {
		t.Fatalf("Raft removals: %v, want the dead manager only", raft.removed)
	}
	store.View(func(tx state.ReadTx) {
		if tx.GetNode("mgr0000000000000000000002") != nil {
			t.Fatal("the dead manager's node is still stored")
		}
	})
}
