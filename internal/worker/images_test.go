package worker_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/imagestore"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/fake"
	"github.com/warren-project/warren/internal/state"
)

const (
	appRef   = "docker.io/library/app:1"
	otherRef = "docker.io/library/other:1"
)

// withArchives lets the cluster's dispatcher serve imported archives, held
// by manager "m", and adds node n2.
func (c *cluster) withArchives() *imagestore.Store {
	c.t.Helper()
	archives, err := imagestore.New(c.t.TempDir())
	if err != nil {
		c.t.Fatal(err)
	}
	c.dispConf.Archives, c.dispConf.ManagerNodeID = archives, "m"
	c.update(func(tx state.Tx) error {
		if err := tx.Create(&api.Node{Id: "n2", Meta: &api.Meta{}}); err != nil {
			return err
		}
		return tx.Create(&api.Cluster{Id: "c", Meta: &api.Meta{}})
	})
	return archives
}

// importArchive stores a fake archive (refs, one a line: what the fake
// executor imports) and records it, as the manager's image import does.
func (c *cluster) importArchive(archives *imagestore.Store, refs []string, nodes ...string) string {
	c.t.Helper()
	digest, size, err := archives.Put(strings.NewReader(strings.Join(refs, "\n")))
	if err != nil {
		c.t.Fatal(err)
	}
	c.update(func(tx state.Tx) error {
		cl := tx.GetCluster()
		cl.ImageArchives = append(cl.ImageArchives, &api.ImageArchive{
			Digest: digest, Refs: refs, Size: size, HolderNodeId: "m", NodeIds: nodes,
			// Later imports are later, whatever the clock's resolution.
			CreatedAt: timestamppb.New(time.Unix(int64(len(cl.ImageArchives)+1), 0)),
		})
		return tx.Update(cl)
	})
	return digest
}

// addTaskWithImage places a task of service web using image on nodeID.
func (c *cluster) addTaskWithImage(id, nodeID, image string) {
	c.t.Helper()
	c.update(func(tx state.Tx) error {
		return tx.Create(&api.Task{
			Id: id, Meta: &api.Meta{}, ServiceId: "svc1", ServiceName: "web", Slot: 1, NodeId: nodeID,
			DesiredState: api.TaskState_TASK_STATE_RUNNING,
			Status:       &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED, Message: "scheduled"},
			Spec:         &api.TaskSpec{Container: &api.ContainerSpec{Image: image}},
		})
	})
}

func has(rt runtime.Executor, ref string) bool {
	ok, err := rt.HasImage(context.Background(), ref)
	return err == nil && ok
}

// reports tells whether the store shows node id holding ref.
func (c *cluster) reports(id, ref string) bool {
	return slices.ContainsFunc(c.node(id).GetDescription().GetImages(), func(i *api.Image) bool { return i.GetRef() == ref })
}

func TestImportedImagesReachTheirNodes(t *testing.T) {
	c := newCluster(t)
	archives := c.withArchives()
	c.startManager()
	rt2 := fake.New()
	c.startAgent(agentConfig("n1", c.rt, c.dial))
	c.startAgent(agentConfig("n2", rt2, c.dial))

	c.importArchive(archives, []string{appRef})
	for id, rt := range map[string]runtime.Executor{"n1": c.rt, "n2": rt2} {
		waitFor(t, id+" holding and reporting "+appRef, func() bool { return has(rt, appRef) && c.reports(id, appRef) })
	}

	// --node: only n1 loads it. n2 loads a later import to every node, and
	// loads go oldest first: had it been told of the first, it would hold it.
	c.importArchive(archives, []string{otherRef}, "n1")
	c.importArchive(archives, []string{"docker.io/library/third:1"})
	waitFor(t, "n2 reporting the third image", func() bool { return c.reports("n2", "docker.io/library/third:1") })
	waitFor(t, "n1 reporting "+otherRef, func() bool { return c.reports("n1", otherRef) })
	if has(rt2, otherRef) || c.reports("n2", otherRef) {
		t.Fatalf("n2 loaded %s, imported to n1 only", otherRef)
	}
}

func TestNodeJoiningLaterGetsImportedImages(t *testing.T) {
	c := newCluster(t)
	archives := c.withArchives()
	c.startManager()
	c.startAgent(agentConfig("n1", c.rt, c.dial))
	c.importArchive(archives, []string{appRef})
	waitFor(t, "n1 reporting "+appRef, func() bool { return c.reports("n1", appRef) })

	rt2 := fake.New()
	c.startAgent(agentConfig("n2", rt2, c.dial))
	waitFor(t, "n2, started later, reporting "+appRef, func() bool { return has(rt2, appRef) && c.reports("n2", appRef) })
}

// gatedExec holds imports until release, and counts pulls.
type gatedExec struct {
	runtime.Executor
	gate    chan struct{}
	release func()
	mu      sync.Mutex
	imports int
	pulls   int
}

func newGatedExec(rt runtime.Executor) *gatedExec {
	g := &gatedExec{Executor: rt, gate: make(chan struct{})}
	var once sync.Once
	g.release = func() { once.Do(func() { close(g.gate) }) }
	return g
}

func (g *gatedExec) ImportImage(ctx context.Context, r io.Reader) ([]runtime.Image, error) {
	g.mu.Lock()
	g.imports++
	g.mu.Unlock()
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Executor.ImportImage(ctx, r)
}

func (g *gatedExec) PullImage(ctx context.Context, ref string, auth *runtime.RegistryAuth, progress func(runtime.PullProgress)) error {
	g.mu.Lock()
	g.pulls++
	g.mu.Unlock()
	return g.Executor.PullImage(ctx, ref, auth, progress)
}

func (g *gatedExec) counts() (imports, pulls int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.imports, g.pulls
}

func TestTaskWaitsForImportedImageInsteadOfPulling(t *testing.T) {
	c := newCluster(t)
	archives := c.withArchives()
	c.startManager()
	rt2 := fake.New()
	rt2.SetPullError(appRef, errors.New("no registry here"))
	exec := newGatedExec(rt2)
	t.Cleanup(exec.release)
	c.importArchive(archives, []string{appRef})
	c.addTaskWithImage("t1", "n2", "app:1")

	c.startAgent(agentConfig("n2", exec, c.dial))
	waitFor(t, "t1 waiting for the imported image", func() bool {
		st := c.task("t1").GetStatus()
		return st.GetState() == api.TaskState_TASK_STATE_PREPARING && strings.Contains(st.GetProgress(), "waiting for imported image "+appRef)
	})
	exec.release()
	c.waitStatus("t1", 0, running)
	if imports, pulls := exec.counts(); imports != 1 || pulls != 0 {
		t.Fatalf("%d imports and %d pulls, want 1 import and no pull", imports, pulls)
	}
}

func TestFailedLoadIsRetried(t *testing.T) {
	c := newCluster(t)
	archives := c.withArchives()
	c.startManager()
	c.rt.FailNext("ImportImage", errors.New("disk full"))
	c.rt.FailNext("ImportImage", errors.New("disk still full"))
	c.startAgent(agentConfig("n1", c.rt, c.dial))
	c.importArchive(archives, []string{appRef})
	waitFor(t, "n1 loading "+appRef+" after two failures", func() bool { return has(c.rt, appRef) && c.reports("n1", appRef) })
}

func TestPulledImagesAreReported(t *testing.T) {
	c := newCluster(t)
	c.startManager()
	c.startAgent(agentConfig("n1", c.rt, c.dial))
	waitFor(t, "n1 registering with busybox", func() bool { return c.reports("n1", "docker.io/library/busybox:latest") })
	c.addTaskWithImage("t1", "n1", "nginx:1")
	c.waitStatus("t1", 0, running)
	waitFor(t, "n1 reporting the pulled nginx", func() bool { return c.reports("n1", "docker.io/library/nginx:1") })
}
