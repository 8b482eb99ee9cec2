package manager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/dispatcher"
	"github.com/warren-project/warren/internal/manager/imagestore"
	"github.com/warren-project/warren/internal/network/fakenet"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/fake"
	"github.com/warren-project/warren/internal/state"
	"github.com/warren-project/warren/internal/worker"
)

// The image tests run clusterImages in an in-process cluster: a test store, a
// dispatcher on real gRPC, and agents of nodes m1 (this manager's own), w1
// and w2 on fake executors, whose "archives" are text files naming their
// images one a line.

const appImage = "docker.io/library/app:1"

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// stableExec gives images digests derived from the archive's bytes, as a
// real runtime does, so that nodes loading one archive agree.
type stableExec struct {
	*fake.Executor
	mu      sync.Mutex
	digests map[string]string
	gate    chan struct{} // when set, imports wait for it to close
}

func newStableExec() *stableExec {
	return &stableExec{Executor: fake.New(), digests: map[string]string{}}
}

// hold makes imports wait until the test ends.
func (s *stableExec) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

func (s *stableExec) ImportImage(ctx context.Context, r io.Reader) ([]runtime.Image, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	imgs, err := s.Executor.ImportImage(ctx, bytes.NewReader(data))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range imgs {
		sum := sha256.Sum256(append(append([]byte{}, data...), imgs[i].Ref...))
		imgs[i].Digest = "sha256:" + hex.EncodeToString(sum[:])
		s.digests[imgs[i].Ref] = imgs[i].Digest
	}
	return imgs, err
}

func (s *stableExec) ListImages(ctx context.Context) ([]runtime.Image, error) {
	imgs, err := s.Executor.ListImages(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range imgs {
		if d, ok := s.digests[imgs[i].Ref]; ok {
			imgs[i].Digest = d
		}
	}
	return imgs, err
}

type imageCluster struct {
	t        *testing.T
	store    *state.MemoryStore
	archives *imagestore.Store
	images   *clusterImages
	execs    map[string]*stableExec
	client   api.DispatcherClient
}

// newImageCluster starts the dispatcher and the agents of the nodes in
// running; the others exist in the store but have not registered.
func newImageCluster(t *testing.T, running ...string) *imageCluster {
	t.Helper()
	store := state.NewTestStore()
	archives, err := imagestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &imageCluster{t: t, store: store, archives: archives, execs: map[string]*stableExec{}}
	c.update(func(tx state.Tx) error {
		if err := tx.Create(&api.Cluster{Id: "c", Meta: &api.Meta{}}); err != nil {
			return err
		}
		for _, id := range []string{"m1", "w1", "w2"} {
			c.execs[id] = newStableExec()
			if err := tx.Create(&api.Node{Id: id, Meta: &api.Meta{}}); err != nil {
				return err
			}
		}
		return nil
	})
	c.images = newClusterImages(store, archives, c.execs["m1"], "m1", quietLog)
	c.startDispatcher()
	for _, id := range running {
		c.startAgent(id)
	}
	return c
}

func (c *imageCluster) update(fn func(state.Tx) error) {
	c.t.Helper()
	if err := c.store.Update(context.Background(), fn); err != nil {
		c.t.Fatalf("store update: %v", err)
	}
}

func (c *imageCluster) startDispatcher() {
	d := dispatcher.New(c.store, dispatcher.Config{
		HeartbeatPeriod: 20 * time.Millisecond, NodeDownAfter: time.Minute, Logger: quietLog,
		Archives: c.archives, ManagerNodeID: "m1",
	})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(ctx) }()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	srv := grpc.NewServer()
	api.RegisterDispatcherServer(srv, d)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatal(err)
	}
	c.client = api.NewDispatcherClient(conn)
	c.t.Cleanup(func() {
		d.Stop()
		srv.Stop()
		_ = conn.Close()
		cancel()
		<-runDone
	})
}

// startAgent runs node id's agent and waits until the node is READY.
func (c *imageCluster) startAgent(id string) {
	c.t.Helper()
	a, err := worker.New(worker.Config{
		NodeID: id, Addr: "192.0.2.1", Executor: c.execs[id], Network: fakenet.New(), Logger: quietLog,
		Dial:         func(context.Context) (api.DispatcherClient, error) { return c.client, nil },
		ReconnectMin: 5 * time.Millisecond, ReconnectMax: 50 * time.Millisecond, RetryDelay: 5 * time.Millisecond,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	c.t.Cleanup(func() { a.Stop(); <-done })
	waitUntil(c.t, "node "+id+" READY", func() bool {
		return c.node(id).GetStatus().GetState() == api.NodeState_NODE_STATE_READY
	})
}

func (c *imageCluster) node(id string) *api.Node {
	var n *api.Node
	c.store.View(func(tx state.ReadTx) { n = tx.GetNode(id) })
	return n
}

func (c *imageCluster) archivesRecorded() []*api.ImageArchive {
	var as []*api.ImageArchive
	c.store.View(func(tx state.ReadTx) { as = tx.GetCluster().GetImageArchives() })
	return as
}

func (c *imageCluster) holds(id, ref string) bool {
	ok, err := c.execs[id].HasImage(context.Background(), ref)
	return err == nil && ok
}

func (c *imageCluster) importText(text string, nodes ...string) ([]*api.Image, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.images.ImportImage(ctx, strings.NewReader(text), nodes)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s, but never saw %s", what)
		}
		time.Sleep(2 * time.Millisecond) // poll interval, bounded by the deadline
	}
}

// nodesOf returns "ref on a,b" for each image, to compare at a glance.
func nodesOf(imgs []*api.Image) string {
	var out []string
	for _, i := range imgs {
		out = append(out, i.GetRef()+" on "+strings.Join(i.GetNodeIds(), ","))
	}
	return strings.Join(out, "; ")
}
