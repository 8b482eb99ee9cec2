package apiserver

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/state"
)

// fakeImages knows a fixed set of images.
type fakeImages struct{ known map[string]bool }

func (f fakeImages) NormalizeRef(ref string) (string, error) { return runtime.NormalizeRef(ref) }
func (f fakeImages) CheckImage(_ context.Context, ref string, _ *api.RegistryAuth) error {
	if f.known[ref] {
		return nil
	}
	return errors.New("not found")
}
func (f fakeImages) ImportImage(context.Context, io.Reader, []string) ([]*api.Image, error) {
	return nil, nil
}
func (f fakeImages) ListImages(context.Context) ([]*api.Image, error) { return nil, nil }

func newServer(t *testing.T) (*Server, *state.MemoryStore) {
	t.Helper()
	store := state.NewTestStore()
	return New(Config{Store: store, Images: fakeImages{known: map[string]bool{
		"docker.io/library/busybox:latest": true, "docker.io/library/busybox:2": true,
	}}}), store
}

func svcSpec(name string, replicas uint64) *api.ServiceSpec {
	return &api.ServiceSpec{
		Name: name,
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}},
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox"}},
	}
}

func TestCreateServiceValidates(t *testing.T) {
	s, store := newServer(t)
	if _, err := s.CreateService(context.Background(), &api.CreateServiceRequest{Spec: svcSpec("web", 2)}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		spec *api.ServiceSpec
		code codes.Code
		want string
	}{
		{"no spec", nil, codes.InvalidArgument, "no service spec"},
		{"bad name", svcSpec("Bad Name", 1), codes.InvalidArgument, "invalid service name"},
		{"name taken", svcSpec("web", 1), codes.AlreadyExists, "web"},
		{"bad constraint", func() *api.ServiceSpec {
			sp := svcSpec("c", 1)
			sp.Task.Placement = &api.Placement{Constraints: []string{"node.labels.zone~edge"}}
			return sp
		}(), codes.InvalidArgument, "zone"},
		{"unknown image", func() *api.ServiceSpec {
			sp := svcSpec("i", 1)
			sp.Task.Container.Image = "nosuch"
			return sp
		}(), codes.InvalidArgument, "warren image import"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := store.Index()
			_, err := s.CreateService(context.Background(), &api.CreateServiceRequest{Spec: c.spec})
			if status.Code(err) != c.code || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %v mentioning %q", err, c.code, c.want)
			}
			if store.Index() != before {
				t.Fatal("a refused create changed the state")
			}
		})
	}
}

func TestCreateNormalizesImageAndDefaults(t *testing.T) {
	s, _ := newServer(t)
	sp := svcSpec("web", 1)
	sp.Mode = nil
	resp, err := s.CreateService(context.Background(), &api.CreateServiceRequest{Spec: sp})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.GetService()
	if got.GetSpec().GetTask().GetContainer().GetImage() != "docker.io/library/busybox:latest" {
		t.Errorf("image = %q, want the normalized reference", got.GetSpec().GetTask().GetContainer().GetImage())
	}
	if got.GetSpec().GetReplicated().GetReplicas() != 1 || got.GetSpecVersion() != 1 {
		t.Errorf("service = %v, want 1 replica at spec version 1", got)
	}
}

func TestUpdateServiceVersions(t *testing.T) {
	s, _ := newServer(t)
	ctx := context.Background()
	created, err := s.CreateService(ctx, &api.CreateServiceRequest{Spec: svcSpec("web", 2)})
	if err != nil {
		t.Fatal(err)
	}
	svc := created.GetService()

	// Replicas alone: no new spec version, so no rollout.
	sp := svcSpec("web", 5)
	up, err := s.UpdateService(ctx, &api.UpdateServiceRequest{Service: "web", ServiceVersion: svc.GetMeta().GetVersion(), Spec: sp})
	if err != nil {
		t.Fatal(err)
	}
	if up.GetService().GetSpecVersion() != 1 {
		t.Fatalf("scale made spec version %d, want 1", up.GetService().GetSpecVersion())
	}
	// A new image: a new spec version, the old spec kept.
	sp = svcSpec("web", 5)
	sp.Task.Container.Image = "busybox:2"
	up2, err := s.UpdateService(ctx, &api.UpdateServiceRequest{Service: "web", Spec: sp})
	if err != nil {
		t.Fatal(err)
	}
	if up2.GetService().GetSpecVersion() != 2 || up2.GetService().GetPreviousSpec().GetTask().GetContainer().GetImage() != "docker.io/library/busybox:latest" {
		t.Fatalf("image update = %v, want spec version 2 with the previous spec", up2.GetService())
	}

	for name, req := range map[string]*api.UpdateServiceRequest{
		"stale version": {Service: "web", ServiceVersion: svc.GetMeta().GetVersion(), Spec: svcSpec("web", 1)},
		"rename":        {Service: "web", Spec: svcSpec("other", 1)},
		"unknown":       {Service: "nope", Spec: svcSpec("nope", 1)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.UpdateService(ctx, req); err == nil {
				t.Fatal("update accepted")
			}
		})
	}
	if _, err := s.UpdateService(ctx, &api.UpdateServiceRequest{Service: "web", ServiceVersion: 1, Spec: svcSpec("web", 1)}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("stale update code = %v, want FailedPrecondition", status.Code(err))
	}
}

func TestRemoveServiceMarksTasks(t *testing.T) {
	s, store := newServer(t)
	ctx := context.Background()
	created, err := s.CreateService(ctx, &api.CreateServiceRequest{Spec: svcSpec("web", 1)})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetService().GetId()
	if err := store.Update(ctx, func(tx state.Tx) error {
		return tx.Create(&api.Task{Id: "t1", Meta: &api.Meta{}, ServiceId: id, DesiredState: api.TaskState_TASK_STATE_RUNNING})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveService(ctx, &api.RemoveServiceRequest{Service: "web"}); err != nil {
		t.Fatal(err)
	}
	store.View(func(tx state.ReadTx) {
		if tx.GetService(id) != nil {
			t.Error("service still stored")
		}
		if d := tx.GetTask("t1").GetDesiredState(); d != api.TaskState_TASK_STATE_REMOVE {
			t.Errorf("task desired state = %v, want REMOVE", d)
		}
	})
	// Its tasks can still be listed by the removed service's ID while they stop.
	tasks, err := s.ListTasks(ctx, &api.ListTasksRequest{Service: id})
	if err != nil || len(tasks.GetTasks()) != 1 {
		t.Fatalf("tasks of the removed service = %v, %v", tasks.GetTasks(), err)
	}
}

func TestListTasksBlocksUntilChange(t *testing.T) {
	s, store := newServer(t)
	ctx := context.Background()
	if err := store.Update(ctx, func(tx state.Tx) error {
		return tx.Create(&api.Task{Id: "t0", Meta: &api.Meta{}, ServiceId: "s"})
	}); err != nil {
		t.Fatal(err)
	}
	first, err := s.ListTasks(ctx, &api.ListTasksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *api.ListTasksResponse, 1)
	go func() {
		resp, _ := s.ListTasks(ctx, &api.ListTasksRequest{MinIndex: first.GetIndex(), Wait: durationpb.New(time.Minute)})
		got <- resp
	}()
	select {
	case <-got:
		t.Fatal("blocking query answered before any change")
	case <-time.After(50 * time.Millisecond):
	}
	if err := store.Update(ctx, func(tx state.Tx) error {
		return tx.Create(&api.Task{Id: "t1", Meta: &api.Meta{}, ServiceId: "s"})
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-got:
		if resp.GetIndex() <= first.GetIndex() || len(resp.GetTasks()) != 2 {
			t.Fatalf("answer %v, want the new task at a later index", resp)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query did not answer after a change")
	}
	// A wait that runs out answers with the state as it is.
	resp, err := s.ListTasks(ctx, &api.ListTasksRequest{MinIndex: store.Index(), Wait: durationpb.New(10 * time.Millisecond)})
	if err != nil || resp.GetIndex() != store.Index() {
		t.Fatalf("timed-out query = %v, %v", resp, err)
	}
}
