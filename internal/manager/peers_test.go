package manager

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/testutil"
)

func TestPeerStatusThreshold(t *testing.T) {
	now := time.Now()
	p := &peerProbes{interval: time.Second}
	tests := []struct {
		name      string
		last      time.Time
		reachable bool
	}{
		{"never answered", time.Time{}, false},
		{"answered just now", now, true},
		{"missed two probes", now.Add(-2900 * time.Millisecond), true},
		{"silent for exactly three intervals", now.Add(-3 * time.Second), true},
		{"silent for longer", now.Add(-3100 * time.Millisecond), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.peers = map[string]*peer{"m2": {lastContact: tt.last}}
			last, ok := p.status("m2", now)
			if ok != tt.reachable || !last.Equal(tt.last) {
				t.Fatalf("status = %v, %v; want %v, %v", last, ok, tt.last, tt.reachable)
			}
		})
	}
	if last, ok := p.status("unknown", now); ok || !last.IsZero() {
		t.Fatalf("a server never probed: %v, %v; want unreachable, no contact", last, ok)
	}
}

// versionServer is a manager's API as far as a probe sees it.
type versionServer struct{ api.UnimplementedControlServer }

func (versionServer) GetVersion(context.Context, *api.GetVersionRequest) (*api.GetVersionResponse, error) {
	return &api.GetVersionResponse{Version: "test"}, nil
}

// serveVersion serves versionServer on addr ("127.0.0.1:0" for any port)
// and returns the address and a stop function.
func serveVersion(t *testing.T, addr string) (string, func()) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	api.RegisterControlServer(s, versionServer{})
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String(), s.Stop
}

// probeHarness runs peerProbes over plain gRPC against targets a test sets.
type probeHarness struct {
	p       *peerProbes
	mu      sync.Mutex
	targets map[string]string
	logs    lockedBuffer
}

// lockedBuffer is a log output that tests read while probes write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startProbes(t *testing.T, interval time.Duration) *probeHarness {
	h := &probeHarness{p: &peerProbes{interval: interval}, targets: map[string]string{}}
	h.p.start(slog.New(slog.NewTextHandler(&h.logs, nil)), func(addr string) (*grpc.ClientConn, error) {
		return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithConnectParams(peerConnectParams))
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.p.run(ctx, h.get)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		h.p.close()
	})
	return h
}

func (h *probeHarness) set(targets map[string]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.targets = targets
}

func (h *probeHarness) get() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.targets)
}

func (h *probeHarness) reachable(id string) bool {
	_, ok := h.p.status(id, time.Now())
	return ok
}

func (h *probeHarness) conn(id string) *grpc.ClientConn {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	if pr := h.p.peers[id]; pr != nil {
		return pr.conn
	}
	return nil
}

// A peer that stops answering becomes unreachable while the others stay
// reachable; one that comes back on its address is reached again soon;
// one that leaves the configuration has its connection closed.
func TestPeerProbesFollowPeers(t *testing.T) {
	addrA, _ := serveVersion(t, "127.0.0.1:0")
	addrB, stopB := serveVersion(t, "127.0.0.1:0")
	h := startProbes(t, 50*time.Millisecond)
	h.set(map[string]string{"a": addrA, "b": addrB, "c": ""})
	testutil.WaitFor(t, 10*time.Second, "both peers reachable", func() bool {
		return h.reachable("a") && h.reachable("b")
	})
	if h.reachable("c") || h.conn("c") != nil {
		t.Fatal("a peer without an API address is reachable or has a connection")
	}

	stopB()
	testutil.WaitFor(t, 10*time.Second, "b unreachable while a stays reachable", func() bool {
		return !h.reachable("b") && h.reachable("a")
	})
	testutil.WaitFor(t, 10*time.Second, "a warning that b is unreachable", func() bool {
		return strings.Contains(h.logs.String(), `level=WARN msg="manager unreachable" node.id=b`)
	})
	serveVersion(t, addrB)
	testutil.WaitFor(t, 10*time.Second, "b reachable again after it restarted", func() bool { return h.reachable("b") })

	connA := h.conn("a")
	h.set(map[string]string{"b": addrB})
	testutil.WaitFor(t, 10*time.Second, "a's connection closed after it left", func() bool {
		return h.conn("a") == nil && connA.GetState() == connectivity.Shutdown
	})
	if last, _ := h.p.status("a", time.Now()); !last.IsZero() {
		t.Fatalf("a peer that left still has a last contact (%v)", last)
	}
}

// Three managers see each other reachable, with one leader; when a
// follower stops, the others report it unreachable, through the API too.
func TestManagersReportPeerReachability(t *testing.T) {
	ms := joinManagers(t, 3)
	const interval = 200 * time.Millisecond
	for _, m := range ms {
		m.probes.setInterval(interval)
	}
	for _, m := range ms {
		testutil.WaitFor(t, 20*time.Second, "manager "+m.NodeID()+" to see three reachable managers and one leader", func() bool {
			return describeServers(m.raftInfo()) == describeWant(ms, leaderOf(ms), nil)
		})
	}
	info := ms[0].raftInfo()
	for _, s := range info.GetServers() {
		want := managerByID(ms, s.GetId()).advertiseAPI()
		if s.GetApiAddr() != want || s.GetLastContact() == nil {
			t.Errorf("server %s: api_addr %q, last contact %v; want %q and a contact", s.GetId(), s.GetApiAddr(), s.GetLastContact(), want)
		}
	}

	leader := leaderOf(ms)
	var stopped *testManager
	var rest []*testManager
	for _, m := range ms {
		if m != leader && stopped == nil {
			stopped = m
		} else {
			rest = append(rest, m)
		}
	}
	stopped.stop()
	for _, m := range rest {
		testutil.WaitFor(t, 20*time.Second, "manager "+m.NodeID()+" to see "+stopped.NodeID()+" unreachable", func() bool {
			return describeServers(m.raftInfo()) == describeWant(ms, leaderOf(rest), stopped)
		})
	}
	c := rest[0].localClient(t)
	testutil.WaitFor(t, 10*time.Second, "GetClusterInfo to report "+stopped.NodeID()+" unreachable", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := c.GetClusterInfo(ctx, &api.GetClusterInfoRequest{})
		if err != nil {
			t.Logf("GetClusterInfo: %v", err)
			return false
		}
		for _, s := range resp.GetRaft().GetServers() {
			if s.GetId() == stopped.NodeID() {
				return !s.GetReachable() && s.GetLastContact() != nil && !s.GetLeader()
			}
		}
		return false
	})
}

func managerByID(ms []*testManager, id string) *testManager {
	for _, m := range ms {
		if m.NodeID() == id {
			return m
		}
	}
	return nil
}

// describeServers is a comparable summary of the servers in info:
// "ID reachable|unreachable [leader]" per server, in ID order.
func describeServers(info *api.RaftInfo) string {
	byID := map[string]string{}
	for _, s := range info.GetServers() {
		d := "unreachable"
		if s.GetReachable() {
			d = "reachable"
		}
		if s.GetLeader() {
			d += " leader"
		}
		byID[s.GetId()] = d
	}
	return sortedLines(byID)
}

// describeWant is describeServers' expected value: every manager
// reachable but down, leader leading.
func describeWant(ms []*testManager, leader, down *testManager) string {
	byID := map[string]string{}
	for _, m := range ms {
		d := "reachable"
		if m == down {
			d = "unreachable"
		}
		if m == leader {
			d += " leader"
		}
		byID[m.NodeID()] = d
	}
	return sortedLines(byID)
}

func sortedLines(byID map[string]string) string {
	out := ""
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out += fmt.Sprintf("%s %s\n", id, byID[id])
	}
	return out
}
