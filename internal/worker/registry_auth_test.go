package worker_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/security/seal"
	"github.com/warren-project/warren/internal/state"
)

// pullRecorder remembers the credentials each pull was given.
type pullRecorder struct {
	runtime.Executor
	mu    sync.Mutex
	pulls map[string]*runtime.RegistryAuth // by ref
}

func (p *pullRecorder) PullImage(ctx context.Context, ref string, auth *runtime.RegistryAuth, progress func(runtime.PullProgress)) error {
	p.mu.Lock()
	if p.pulls == nil {
		p.pulls = map[string]*runtime.RegistryAuth{}
	}
	var c *runtime.RegistryAuth
	if auth != nil {
		cp := *auth
		c = &cp
	}
	p.pulls[ref] = c
	p.mu.Unlock()
	return p.Executor.PullImage(ctx, ref, auth, progress)
}

func (p *pullRecorder) pulled(ref string) (*runtime.RegistryAuth, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	auth, ok := p.pulls[ref]
	return auth, ok
}

func TestPullUsesTheTasksRegistryCredentials(t *testing.T) {
	const (
		image    = "registry.example.com:5000/team/app:1"
		password = "pw-0b8e-agent-never-writes"
	)
	c := newCluster(t)
	sealer, err := seal.LoadOrCreate(filepath.Join(t.TempDir(), "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	c.dispConf.Sealer = sealer
	c.startManager()
	rec := &pullRecorder{Executor: c.rt}
	cfg := agentConfig("n1", rec, c.dial)
	cfg.DataDir = t.TempDir()
	c.startAgent(cfg)

	auth := &api.RegistryAuth{Server: "registry.example.com:5000", Username: "alice", Password: password}
	sealed, err := sealer.SealMessage(auth, []byte("svc1"))
	if err != nil {
		t.Fatal(err)
	}
	c.update(func(tx state.Tx) error {
		svc := &api.Service{Id: "svc1", Meta: &api.Meta{}, Spec: &api.ServiceSpec{Name: "web"}, SealedRegistryAuth: sealed}
		task := &api.Task{
			Id: "t1", Meta: &api.Meta{}, ServiceId: "svc1", ServiceName: "web", Slot: 1, NodeId: "n1",
			DesiredState: api.TaskState_TASK_STATE_RUNNING,
			Status:       &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED},
			Spec:         &api.TaskSpec{Container: &api.ContainerSpec{Image: image}},
		}
		if err := tx.Create(svc); err != nil {
			return err
		}
		return tx.Create(task)
	})
	c.waitStatus("t1", 0, running)

	got, ok := rec.pulled(image)
	if !ok || got == nil || *got != (runtime.RegistryAuth{Username: "alice", Password: password}) {
		t.Fatalf("pull of %s got credentials %+v (pulled: %v), want alice's", image, got, ok)
	}
	// Nothing the agent wrote holds the password.
	err = filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err == nil && bytes.Contains(data, []byte(password)) {
			t.Errorf("%s holds the registry password", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if task := c.task("t1"); task.GetRegistryAuth() != nil {
		t.Fatal("the stored task carries the credentials")
	}
}
