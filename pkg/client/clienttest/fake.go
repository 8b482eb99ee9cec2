// Package clienttest is a fake Warren manager for tests of API clients: an
// in-memory api.ControlServer served over a real gRPC unix socket, with a
// small orchestrator that makes tasks for services and moves them along one
// state per Step. It records every call, so a test can check what a client
// sent, or that it sent nothing.
package clienttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
)

// Call is one recorded call: the method's short name ("CreateService") and
// a copy of its request (nil for the ImportImage stream).
type Call struct {
	Method  string
	Request proto.Message
}

// Fake is the fake manager. Its zero value is not usable: call New.
type Fake struct {
	api.UnimplementedControlServer

	mu       sync.Mutex
	index    uint64
	changed  chan struct{} // closed and replaced at every change
	services map[string]*api.Service
	tasks    map[string]*api.Task
	nodes    []*api.Node
	images   []*api.Image
	calls    []Call
	seq      int
	last     time.Time
	// cluster administration: a CA made on first use, join secrets by role
	ca          *ca.CA
	joinSecrets map[api.NodeRole]string
	// knobs
	rejects             map[string]string
	managerAddrs        []string
	updateConflicts     int
	nodeUpdateConflicts int
	version             *api.GetVersionResponse
	unreachable         map[string]time.Time // manager node ID → its last contact
}

// New returns a fake with one ready manager node, "node-1".
func New() *Fake {
	f := &Fake{
		changed:     make(chan struct{}),
		services:    map[string]*api.Service{},
		tasks:       map[string]*api.Task{},
		rejects:     map[string]string{},
		joinSecrets: map[api.NodeRole]string{},
		version:     &api.GetVersionResponse{Version: "1.2.3-fake", GitCommit: "abc1234", GoVersion: "go1.26", ApiVersion: "v1"},
	}
	f.AddNode("node-1", api.NodeRole_NODE_ROLE_MANAGER)
	return f
}

// Start serves srv on a unix socket in a temporary directory until the
// test ends, and returns its host ("unix:///...").
func Start(t testing.TB, srv api.ControlServer) string {
	t.Helper()
	// A short directory: a socket path may not exceed 108 bytes.
	dir, err := os.MkdirTemp("", "wfake")
	if err != nil {
		t.Fatalf("clienttest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "w.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("clienttest: listen on %s: %v", sock, err)
	}
	serve(t, srv, lis)
	return "unix://" + sock
}

// serve serves srv on lis until the test ends, recording calls to a Fake.
func serve(t testing.TB, srv api.ControlServer, lis net.Listener, opts ...grpc.ServerOption) *grpc.Server {
	if f, ok := srv.(*Fake); ok {
		opts = append(opts, grpc.ChainUnaryInterceptor(f.recordUnary), grpc.ChainStreamInterceptor(f.recordStream))
	}
	gs := grpc.NewServer(opts...)
	api.RegisterControlServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return gs
}

func (f *Fake) recordUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	m, _ := req.(proto.Message)
	f.record(info.FullMethod, proto.Clone(m))
	return h(ctx, req)
}

func (f *Fake) recordStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	f.record(info.FullMethod, nil)
	return h(srv, ss)
}

func (f *Fake) record(full string, req proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Method: full[strings.LastIndex(full, "/")+1:], Request: req})
}

// Calls returns the calls received so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Requests returns the requests of one method, in order.
func (f *Fake) Requests(method string) []proto.Message {
	var out []proto.Message
	for _, c := range f.Calls() {
		if c.Method == method {
			out = append(out, c.Request)
		}
	}
	return out
}

// Reject makes tasks of image fail to prepare with err (REJECTED).
func (f *Fake) Reject(image, err string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rejects[image] = err
}

// ConflictUpdates makes the next n UpdateService calls fail with
// FailedPrecondition, as if another writer got there first.
func (f *Fake) ConflictUpdates(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updateConflicts = n
}

// Index is the fake's state index.
func (f *Fake) Index() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index
}

// bump records a change: it advances the index and wakes blocking queries.
// The caller holds mu.
func (f *Fake) bump() uint64 {
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
	return f.index
}

// newID returns a Swarm-like 25-character ID. The caller holds mu.
func (f *Fake) newID(kind string) string {
	f.seq++
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s-%d", kind, f.seq)))
	return hex.EncodeToString(sum[:])[:25]
}

// now is the wall clock, made strictly increasing so that "newest" is
// never a tie. The caller holds mu.
func (f *Fake) now() *timestamppb.Timestamp {
	t := time.Now()
	if !t.After(f.last) {
		t = f.last.Add(time.Microsecond)
	}
	f.last = t
	return timestamppb.New(t)
}

func (f *Fake) meta(index uint64) *api.Meta {
	ts := f.now()
	return &api.Meta{Version: index, CreatedAt: ts, UpdatedAt: ts}
}
