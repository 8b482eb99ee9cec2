package dispatcher

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/seal"
	"github.com/warren-project/warren/internal/state"
)

func newSealer(t *testing.T) *seal.Sealer {
	t.Helper()
	s, err := seal.LoadOrCreate(filepath.Join(t.TempDir(), "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serviceWithAuth is service id with auth sealed for it (none when nil).
func serviceWithAuth(t *testing.T, s *seal.Sealer, id string, auth *api.RegistryAuth) *api.Service {
	t.Helper()
	svc := &api.Service{Id: id, Meta: &api.Meta{}, Spec: &api.ServiceSpec{Name: "svc-" + id}}
	if auth != nil {
		var err error
		if svc.SealedRegistryAuth, err = s.SealMessage(auth, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	return svc
}

func taskOf(id, serviceID, nodeID string, st api.TaskState) *api.Task {
	task := newTask(id, nodeID, st)
	task.ServiceId = serviceID
	return task
}

// authOf returns the credentials each task of a carries, by task ID.
func authOf(a *api.Assignments) map[string]*api.RegistryAuth {
	out := map[string]*api.RegistryAuth{}
	for _, task := range a.GetTasks() {
		out[task.GetId()] = task.GetRegistryAuth()
	}
	return out
}

// mentions tells whether the wire form of m holds secret.
func mentions(t *testing.T, m proto.Message, secret string) bool {
	t.Helper()
	wire, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(wire, []byte(secret))
}

func TestCredentialsGoOnlyWithTheNodesOwnTasks(t *testing.T) {
	sealer := newSealer(t)
	cfg := testConfig()
	cfg.Sealer = sealer
	e := newTestEnv(t, cfg)
	alice := &api.RegistryAuth{Server: "registry.example.com", Username: "alice", Password: "pw-alice-1"}
	rotated := &api.RegistryAuth{Server: "registry.example.com", Username: "alice", Password: "pw-alice-2"}
	e.update(t, func(tx state.Tx) error {
		for _, o := range []state.Object{
			serviceWithAuth(t, sealer, "private", alice),
			serviceWithAuth(t, sealer, "public", nil),
			taskOf("t1", "private", "n1", api.TaskState_TASK_STATE_ASSIGNED),
			taskOf("t2", "private", "n1", api.TaskState_TASK_STATE_RUNNING),
			taskOf("t3", "public", "n1", api.TaskState_TASK_STATE_ASSIGNED),
			taskOf("t4", "public", "n2", api.TaskState_TASK_STATE_ASSIGNED),
		} {
			if err := tx.Create(o); err != nil {
				return err
			}
		}
		return nil
	})
	n1, n2 := e.mustConnect(t, "n1"), e.mustConnect(t, "n2")

	got := authOf(n1.next(t))
	if !proto.Equal(got["t1"], alice) || got["t2"] != nil || got["t3"] != nil {
		t.Fatalf("n1's first assignments carry %v; want alice's credentials on t1 alone (t2 runs, t3's service has none)", got)
	}
	if a := n2.next(t); mentions(t, a, "pw-alice") {
		t.Fatal("n2 received credentials of a service it runs no task of")
	}

	// A new task of the service takes the credentials on its way to n1.
	e.update(t, func(tx state.Tx) error {
		return tx.Create(taskOf("t5", "private", "n1", api.TaskState_TASK_STATE_ASSIGNED))
	})
	if got := authOf(n1.next(t)); !proto.Equal(got["t5"], alice) {
		t.Fatalf("new task got %v, want alice's credentials", got)
	}

	// New credentials reach the tasks not yet running, and no other node.
	e.update(t, func(tx state.Tx) error {
		svc := tx.GetService("private")
		svc.SealedRegistryAuth = serviceWithAuth(t, sealer, "private", rotated).GetSealedRegistryAuth()
		return tx.Update(svc)
	})
	a := n1.next(t)
	if ids := taskIDs(a.GetTasks()); !slices.Equal(ids, []string{"t1", "t5"}) {
		t.Fatalf("after a credential change n1 got tasks %v, want t1 and t5 (t2 already runs)", ids)
	}
	for id, auth := range authOf(a) {
		if !proto.Equal(auth, rotated) {
			t.Fatalf("task %s got %v, want the new credentials", id, auth)
		}
	}
	// The next message n2 gets is the next change of its own: nothing came between.
	e.update(t, func(tx state.Tx) error {
		return tx.Create(taskOf("t6", "public", "n2", api.TaskState_TASK_STATE_ASSIGNED))
	})
	if a := n2.next(t); a.GetSequence() != 2 || !slices.Equal(taskIDs(a.GetTasks()), []string{"t6"}) {
		t.Fatalf("n2 got %v, want only its own new task t6 as message #2", a)
	}

	// The store never held them in the clear.
	if snap := e.store.Snapshot(); mentions(t, snap, "pw-alice") {
		t.Fatal("the store holds registry credentials in plain text")
	}
	if task := e.task("t1"); task.GetRegistryAuth() != nil {
		t.Fatal("a stored task carries credentials")
	}
}

func TestCredentialsThatDoNotOpenAreNotSent(t *testing.T) {
	sealer := newSealer(t)
	auth := &api.RegistryAuth{Server: "registry.example.com", Username: "u", Password: "pw"}
	cases := []struct {
		name   string
		sealer *seal.Sealer
		svc    *api.Service
	}{
		{"no sealer", nil, serviceWithAuth(t, sealer, "s1", auth)},
		{"sealed for another service", sealer, func() *api.Service {
			svc := serviceWithAuth(t, sealer, "s1", nil)
			svc.SealedRegistryAuth = serviceWithAuth(t, sealer, "other", auth).GetSealedRegistryAuth()
			return svc
		}()},
		{"sealed with another key", sealer, serviceWithAuth(t, newSealer(t), "s1", auth)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Sealer = c.sealer
			e := newTestEnv(t, cfg)
			e.update(t, func(tx state.Tx) error {
				return errors.Join(tx.Create(c.svc), tx.Create(taskOf("t1", "s1", "n1", api.TaskState_TASK_STATE_ASSIGNED)))
			})
			a := e.mustConnect(t, "n1").next(t)
			if len(a.GetTasks()) != 1 || a.GetTasks()[0].GetRegistryAuth() != nil {
				t.Fatalf("assignments = %v, want t1 without credentials", a)
			}
		})
	}
}

func TestCredentialsAreNoChangeOfATask(t *testing.T) {
	set := newAssignmentSet("n1")
	held := newTask("t1", "n1", api.TaskState_TASK_STATE_ASSIGNED)
	set.complete([]*api.Task{held})
	withAuth := proto.Clone(held).(*api.Task)
	withAuth.RegistryAuth = &api.RegistryAuth{Username: "u", Password: "p"}
	set.observe(state.Event{Kind: state.EventUpdate, Object: withAuth})
	if _, queued := set.pending["t1"]; queued {
		t.Fatal("a task differing only in its credentials was queued for the node")
	}
}
