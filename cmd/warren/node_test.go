package main

import (
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client/clienttest"
)

// lastNodeUpdate returns the last UpdateNode request the fake got.
func lastNodeUpdate(t *testing.T, fake *clienttest.Fake) *api.UpdateNodeRequest {
	t.Helper()
	reqs := fake.Requests("UpdateNode")
	if len(reqs) == 0 {
		t.Fatal("no UpdateNode call")
	}
	return reqs[len(reqs)-1].(*api.UpdateNodeRequest)
}

func TestNodeUpdate(t *testing.T) {
	fake, host := fakeManager(t)
	worker := fake.AddNode("node-2", api.NodeRole_NODE_ROLE_WORKER)
	tests := []struct {
		name         string
		args         []string
		availability api.NodeAvailability
		labels       map[string]string
	}{
		{"drain and label", []string{"--availability", "drain", "--label-add", "zone=edge", "--label-add", "ssd"},
			api.NodeAvailability_NODE_AVAILABILITY_DRAIN, map[string]string{"zone": "edge", "ssd": ""}},
		{"replace a label, keep the rest", []string{"--label-add", "zone=core"},
			api.NodeAvailability_NODE_AVAILABILITY_DRAIN, map[string]string{"zone": "core", "ssd": ""}},
		{"remove a label and activate", []string{"--label-rm", "ssd", "--availability", "active"},
			api.NodeAvailability_NODE_AVAILABILITY_ACTIVE, map[string]string{"zone": "core"}},
		{"pause", []string{"--availability", "pause"},
			api.NodeAvailability_NODE_AVAILABILITY_PAUSE, map[string]string{"zone": "core"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			version := fake.Nodes()[1].GetMeta().GetVersion()
			r := warren(t, host, append(append([]string{"node", "update"}, tt.args...), "node-2")...).wantOK(t)
			if r.out != "node-2\n" {
				t.Errorf("output %q, want the node as given", r.out)
			}
			req := lastNodeUpdate(t, fake)
			sp := req.GetSpec()
			if req.GetNode() != worker.GetId() || req.GetNodeVersion() != version {
				t.Errorf("request for node %s at version %d, want %s at %d", req.GetNode(), req.GetNodeVersion(), worker.GetId(), version)
			}
			if sp.GetAvailability() != tt.availability || !maps.Equal(sp.GetLabels(), tt.labels) || sp.GetRole() != api.NodeRole_NODE_ROLE_WORKER {
				t.Errorf("sent spec %v, want %v with labels %v and the role unchanged", sp, tt.availability, tt.labels)
			}
		})
	}
	warren(t, host, "node", "update", "--label-rm", "nosuch", "node-2").wantError(t, `node node-2: node has no label "nosuch" to remove`)
}

func TestNodeUpdateRetriesOnConflict(t *testing.T) {
	fake, host := fakeManager(t)
	fake.ConflictNodeUpdates(1)
	warren(t, host, "node", "update", "--availability", "drain", "node-1").wantOK(t)
	if n := len(fake.Requests("UpdateNode")); n != 2 {
		t.Fatalf("%d UpdateNode calls, want a retry after the conflict", n)
	}
	if got := fake.Nodes()[0].GetSpec().GetAvailability(); got != api.NodeAvailability_NODE_AVAILABILITY_DRAIN {
		t.Fatalf("availability %v after the retry, want drain", got)
	}
	fake.ConflictNodeUpdates(2)
	warren(t, host, "node", "update", "--availability", "active", "node-1").wantError(t, "read it again")
}

func TestNodeRemove(t *testing.T) {
	fake, host := fakeManager(t)
	fake.AddNode("node-2", api.NodeRole_NODE_ROLE_WORKER)
	fake.AddNode("node-3", api.NodeRole_NODE_ROLE_WORKER)
	if err := fake.SetNodeStatus("node-3", &api.NodeStatus{State: api.NodeState_NODE_STATE_DOWN}); err != nil {
		t.Fatal(err)
	}
	warren(t, host, "node", "rm", "node-2").wantError(t, "use --force")
	warren(t, host, "node", "rm", "node-1", "--force").wantError(t, "is a manager: demote it first")
	r := warren(t, host, "node", "rm", "node-3").wantOK(t)
	if r.out != "node-3\n" {
		t.Errorf("output %q", r.out)
	}
	r = warren(t, host, "node", "rm", "--force", "node-2").wantOK(t)
	if r.out != "node-2\n" {
		t.Errorf("output %q", r.out)
	}
	reqs := fake.Requests("RemoveNode")
	if last := reqs[len(reqs)-1].(*api.RemoveNodeRequest); !last.GetForce() || last.GetNode() != "node-2" {
		t.Errorf("last request %v, want node-2 forced", last)
	}
	if nodes := fake.Nodes(); len(nodes) != 1 || nodes[0].GetDescription().GetHostname() != "node-1" {
		t.Fatalf("nodes left: %v; want node-1 only", nodes)
	}
	// One failure does not stop the others, and fails the command.
	fake.AddNode("node-4", api.NodeRole_NODE_ROLE_WORKER)
	r = warren(t, host, "node", "rm", "-f", "nope", "node-4")
	r.wantError(t, "nope")
	if r.out != "node-4\n" {
		t.Errorf("output %q, want node-4 removed", r.out)
	}
}

func TestNodeLsManagerStatus(t *testing.T) {
	fake, host := fakeManager(t)
	fake.AddNode("node-2", api.NodeRole_NODE_ROLE_WORKER)
	fake.AddNode("node-3", api.NodeRole_NODE_ROLE_MANAGER)
	r := warren(t, host, "node", "ls").wantOK(t)
	header := strings.SplitN(r.out, "\n", 2)[0]
	cols := []string{"ID", "HOSTNAME", "ROLE", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ADDRESS", "TASKS"}
	if strings.Join(strings.Fields(header), " ") != strings.Join(cols, " ") {
		t.Fatalf("header %q, want %q", header, cols)
	}
	r = warren(t, host, "node", "ls", "--format", "{{.Hostname}}={{.ManagerStatus}}").wantOK(t)
	if r.out != "node-1=Leader\nnode-2=\nnode-3=Reachable\n" {
		t.Fatalf("manager statuses %q", r.out)
	}
	if err := fake.SetManagerUnreachable("node-3", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	r = warren(t, host, "node", "ls", "--format", "{{.Hostname}}={{.ManagerStatus}}").wantOK(t)
	if !strings.Contains(r.out, "node-3=Unreachable\n") {
		t.Fatalf("manager statuses %q, want node-3 unreachable", r.out)
	}
}

func TestManagerStatus(t *testing.T) {
	manager := &api.NodeSpec{Role: api.NodeRole_NODE_ROLE_MANAGER}
	raft := &api.RaftInfo{LeaderId: "m1", Servers: []*api.RaftServer{
		{Id: "m1", Leader: true, Reachable: true},
		{Id: "m2", Reachable: true},
		{Id: "m3"},
	}}
	tests := []struct {
		name string
		node *api.Node
		raft *api.RaftInfo
		want string
	}{
		{"worker", &api.Node{Id: "w1", Spec: &api.NodeSpec{Role: api.NodeRole_NODE_ROLE_WORKER}}, raft, ""},
		{"leader", &api.Node{Id: "m1", Spec: manager}, raft, "Leader"},
		{"reachable", &api.Node{Id: "m2", Spec: manager}, raft, "Reachable"},
		{"unreachable", &api.Node{Id: "m3", Spec: manager}, raft, "Unreachable"},
		{"not a Raft member yet", &api.Node{Id: "m4", Spec: manager}, raft, ""},
		{"leader known by ID only", &api.Node{Id: "m1", Spec: manager},
			&api.RaftInfo{LeaderId: "m1", Servers: []*api.RaftServer{{Id: "m1"}}}, "Leader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := managerStatus(tt.node, tt.raft); got != tt.want {
				t.Fatalf("managerStatus = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNodeInspectPretty(t *testing.T) {
	fake, host := fakeManager(t)
	fake.AddNode("node-2", api.NodeRole_NODE_ROLE_WORKER)
	r := warren(t, host, "node", "inspect", "--pretty", "node-2").wantOK(t)
	for _, want := range []string{"Hostname:", "node-2", "Role:", "worker", "Availability:", "active", "Labels:", "none", "Architecture:"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("pretty inspect lacks %q:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out, "Certificate expires") {
		t.Errorf("pretty inspect shows a certificate the node has not reported:\n%s", r.out)
	}

	warren(t, host, "node", "update", "--label-add", "zone=edge", "--label-add", "arch=arm", "node-2").wantOK(t)
	expiry := time.Now().Add(90*24*time.Hour + time.Hour)
	if err := fake.SetNodeStatus("node-2", &api.NodeStatus{State: api.NodeState_NODE_STATE_READY, CertNotAfter: timestamppb.New(expiry)}); err != nil {
		t.Fatal(err)
	}
	r = warren(t, host, "node", "inspect", "--pretty", "node-2", "node-1").wantOK(t)
	if !regexp.MustCompile(`\nLabels: +arch=arm\n +zone=edge\n`).MatchString(r.out) {
		t.Errorf("pretty inspect does not list the labels sorted:\n%s", r.out)
	}
	for _, want := range []string{"Certificate expires:", expiry.UTC().Format(time.RFC3339), "(in 3 months)", "\n\nID:"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("pretty inspect lacks %q:\n%s", want, r.out)
		}
	}
}

// promote and demote ask for the role and wait until the node has it;
// demoting the last manager says what to do instead.
func TestNodePromoteDemote(t *testing.T) {
	fake, host := fakeManager(t)
	fake.AddNode("node-2", api.NodeRole_NODE_ROLE_WORKER)
	r := warren(t, host, "node", "promote", "node-2").wantOK(t)
	if !strings.Contains(r.out, "node node-2: now a manager (Reachable)") {
		t.Fatalf("promote output %q, want it to end with the node a reachable manager", r.out)
	}
	if got := fake.Nodes()[1]; !got.IsManager() || got.GetSpec().GetRole() != api.NodeRole_NODE_ROLE_MANAGER {
		t.Fatalf("node-2 after promote: %v", got)
	}
	r = warren(t, host, "node", "promote", "--detach", "node-2").wantOK(t)
	if !strings.Contains(r.out, "already a manager") {
		t.Fatalf("second promote output %q, want it to say the node already is one", r.out)
	}
	r = warren(t, host, "node", "demote", "node-2").wantOK(t)
	if !strings.Contains(r.out, "node node-2: now a worker") {
		t.Fatalf("demote output %q", r.out)
	}
	warren(t, host, "node", "demote", fake.Nodes()[0].GetDescription().GetHostname()).wantError(t, "only manager")
	r = warren(t, host, "node", "ls").wantOK(t)
	if !regexp.MustCompile(`node-2\s+worker\s`).MatchString(r.out) {
		t.Fatalf("node ls after demote:\n%s", r.out)
	}
}
