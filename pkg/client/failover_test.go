package client_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/pkg/client"
	"github.com/warren-project/warren/pkg/client/clienttest"
)

// manager is one manager of a test cluster, serving a part of the API: its
// version is its name, so a test sees who answered. With unavailable set it
// answers every call Unavailable, as a manager without quorum does.
type manager struct {
	api.UnimplementedControlServer
	name string
	srv  *clienttest.Server

	versions, infos, logs, creates atomic.Int32

	mu          sync.Mutex
	unavailable string
	addrs       []string // what GetClusterInfo names
}

// set sets what the manager answers Unavailable with ("" for nothing) and
// the managers it names.
func (m *manager) set(unavailable string, addrs ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unavailable, m.addrs = unavailable, addrs
}

func (m *manager) get() (unavailable string, addrs []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unavailable, m.addrs
}

func (m *manager) GetVersion(context.Context, *api.GetVersionRequest) (*api.GetVersionResponse, error) {
	m.versions.Add(1)
	if msg, _ := m.get(); msg != "" {
		return nil, status.Error(codes.Unavailable, msg)
	}
	return &api.GetVersionResponse{Version: m.name}, nil
}

func (m *manager) GetClusterInfo(context.Context, *api.GetClusterInfoRequest) (*api.GetClusterInfoResponse, error) {
	m.infos.Add(1)
	_, addrs := m.get()
	return &api.GetClusterInfoResponse{ManagerAddrs: addrs}, nil
}

// Logs sends one line naming the manager, then fails as a manager losing
// its quorum mid-stream would, when unavailable is set.
func (m *manager) Logs(_ *api.LogsRequest, stream grpc.ServerStreamingServer[api.LogMessage]) error {
	m.logs.Add(1)
	if err := stream.Send(&api.LogMessage{Line: []byte("from " + m.name)}); err != nil {
		return err
	}
	if msg, _ := m.get(); msg != "" {
		return status.Error(codes.Unavailable, msg)
	}
	return nil
}

// CreateService fails Unavailable with the manager's message when set.
func (m *manager) CreateService(context.Context, *api.CreateServiceRequest) (*api.CreateServiceResponse, error) {
	m.creates.Add(1)
	if msg, _ := m.get(); msg != "" {
		return nil, status.Error(codes.Unavailable, msg)
	}
	return &api.CreateServiceResponse{Service: &api.Service{Id: m.name}}, nil
}

func (m *manager) host() string { return m.srv.Host }
func (m *manager) addr() string { return strings.TrimPrefix(m.srv.Host, "tcp://") }

// cluster is a test cluster: its managers on loopback with mutual TLS, and
// an admin bundle that reaches them.
type cluster struct {
	managers []*manager
	tlsDir   string
}

func newCluster(t *testing.T, names ...string) *cluster {
	t.Helper()
	root, err := ca.Generate("test", 0)
	if err != nil {
		t.Fatal(err)
	}
	cl := &cluster{tlsDir: clienttest.WriteAdminBundle(t, root, t.TempDir())}
	for _, name := range names {
		m := &manager{name: name}
		m.srv = clienttest.ServeTLS(t, m, root)
		cl.managers = append(cl.managers, m)
	}
	return cl
}

// hosts is the managers' hosts, comma-separated, as -H takes them.
func (cl *cluster) hosts() string {
	var hs []string
	for _, m := range cl.managers {
		hs = append(hs, m.host())
	}
	return strings.Join(hs, ",")
}

// version makes a GetVersion call and returns who answered.
func version(t *testing.T, c *client.Client) string {
	t.Helper()
	v, err := c.GetVersion(testCtx(t), &api.GetVersionRequest{})
	if err != nil {
		t.Fatalf("GetVersion: %v", err)
	}
	return v.GetVersion()
}

func TestFailoverWhenManagersStop(t *testing.T) {
	cl := newCluster(t, "m1", "m2", "m3")
	m1, m2, m3 := cl.managers[0], cl.managers[1], cl.managers[2]
	c := newClient(t, cl.hosts(), client.WithTLSDir(cl.tlsDir))
	steps := []struct {
		stop *manager
		want *manager
	}{
		{nil, m1},
		{m1, m2},
		{nil, m2},
		{m2, m3},
	}
	for i, st := range steps {
		if st.stop != nil {
			st.stop.srv.Stop()
		}
		if got := version(t, c); got != st.want.name {
			t.Fatalf("step %d: answered by %s, want %s", i, got, st.want.name)
		}
		if c.Host() != st.want.host() {
			t.Fatalf("step %d: Host() = %s, want %s (the manager that answered)", i, c.Host(), st.want.host())
		}
	}
	// The client stuck to each manager that answered: m1 and m2 were each
	// asked once more only when they had died.
	if n1, n2 := m1.versions.Load(), m2.versions.Load(); n1 != 1 || n2 != 2 {
		t.Fatalf("m1 served %d calls and m2 %d; want 1 and 2", n1, n2)
	}
}

func TestFailoverWhenManagerLostQuorum(t *testing.T) {
	cl := newCluster(t, "m1", "m2")
	m1, m2 := cl.managers[0], cl.managers[1]
	m1.set("no leader elected yet")
	c := newClient(t, cl.hosts(), client.WithTLSDir(cl.tlsDir))
	for range 3 {
		if got := version(t, c); got != "m2" {
			t.Fatalf("answered by %s, want m2", got)
		}
	}
	if n := m1.versions.Load(); n != 1 {
		t.Fatalf("m1 was asked %d times; want once, then the client sticks to m2", n)
	}
	if n := m2.versions.Load(); n != 3 {
		t.Fatalf("m2 was asked %d times; want 3", n)
	}
}

func TestFailoverUnderConcurrentCalls(t *testing.T) {
	cl := newCluster(t, "m1", "m2")
	c := newClient(t, cl.hosts(), client.WithTLSDir(cl.tlsDir))
	version(t, c)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if g == 0 && i == 5 {
					cl.managers[0].srv.Stop()
				}
				if _, err := c.GetVersion(testCtx(t), &api.GetVersionRequest{}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a call failed while its manager stopped: %v", err)
	}
	if got := version(t, c); got != "m2" {
		t.Fatalf("answered by %s after m1 stopped, want m2", got)
	}
}

func TestAllManagersFail(t *testing.T) {
	tests := []struct {
		name        string
		unavailable []string // per manager; "stop" stops it
		want        string
	}{
		{"all down", []string{"stop", "stop", "stop"},
			"cannot reach any Warren manager: M1, M2 and M3 (connection refused); check that the managers are running, or use -H or WARREN_HOST to choose others"},
		{"quorum lost", []string{"stop", "no leader elected yet", "no leader elected yet"},
			"no Warren manager can serve this now: M1 (connection refused); M2 and M3 (answered: no leader elected yet); " +
				"a cluster serves while a majority of its managers run: start the ones that are down, or use -H or WARREN_HOST to choose others"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newCluster(t, "m1", "m2", "m3")
			want := tt.want
			for i, m := range cl.managers {
				if tt.unavailable[i] == "stop" {
					m.srv.Stop()
				} else {
					m.set(tt.unavailable[i])
				}
				want = strings.ReplaceAll(want, "M"+string(rune('1'+i)), m.host())
			}
			c := newClient(t, cl.hosts(), client.WithTLSDir(cl.tlsDir))
			_, err := c.GetVersion(testCtx(t), &api.GetVersionRequest{})
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n  %v\nwant:\n  %s", err, want)
			}
			if client.Code(err) != codes.Unavailable {
				t.Fatalf("code %v; want Unavailable", client.Code(err))
			}
		})
	}
}

func TestStreamStartsOnALiveManager(t *testing.T) {
	cl := newCluster(t, "m1", "m2", "m3")
	m1, m2, m3 := cl.managers[0], cl.managers[1], cl.managers[2]
	m1.srv.Stop()
	m2.set("leadership lost")
	c := newClient(t, cl.hosts(), client.WithTLSDir(cl.tlsDir))
	var lines []string
	err := c.Logs(testCtx(t), &api.LogsRequest{Service: "web"}, func(m *api.LogMessage) error {
		lines = append(lines, string(m.GetLine()))
		return nil
	})
	// m2 accepted the stream, then failed it: that is the caller's error,
	// not a reason to start over on m3 and repeat the lines seen.
	if client.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "leadership lost") {
		t.Fatalf("Logs error %v; want m2's Unavailable", err)
	}
	if len(lines) != 1 || lines[0] != "from m2" {
		t.Fatalf("lines %q; want only m2's", lines)
	}
	if n := m3.logs.Load(); n != 0 {
		t.Fatalf("m3 got %d Logs streams; want none", n)
	}
}

func TestAllManagersFailTLS(t *testing.T) {
	cl := newCluster(t, "m1")
	other := newCluster(t, "stranger") // another cluster's CA: the handshake fails
	cl.managers[0].srv.Stop()
	c := newClient(t, cl.hosts()+","+other.hosts(), client.WithTLSDir(cl.tlsDir))
	_, err := c.GetVersion(testCtx(t), &api.GetVersionRequest{})
	want := "cannot reach any Warren manager: " + cl.hosts() + " (connection refused); " + other.hosts() + " (TLS handshake failed: "
	if err == nil || !strings.HasPrefix(err.Error(), want) ||
		!strings.HasSuffix(err.Error(), "; check that the managers are running; check the certificates in "+cl.tlsDir+
			" (or choose another directory with --tls-dir or WARREN_TLS_DIR), or use -H or WARREN_HOST to choose others") {
		t.Fatalf("error:\n  %v\nwant it to start with:\n  %s\nand advise checking the certificates", err, want)
	}
}

// A write goes to another manager only when the first surely changed
// nothing: "no leader" is retried, a call that broke after it was sent is
// not (it may have been applied).
func TestWritesRetriedOnlyWhenNeverApplied(t *testing.T) {
	cl := newCluster(t, "m1", "m2")
	c, err := client.New(cl.hosts(), client.WithTLSDir(cl.tlsDir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	create := func() (*api.CreateServiceResponse, error) {
		return c.CreateService(context.Background(), &api.CreateServiceRequest{Spec: &api.ServiceSpec{Name: "web"}})
	}
	cl.managers[0].set("no Raft leader: the cluster cannot accept writes right now")
	resp, err := create()
	if err != nil || resp.GetService().GetId() != "m2" {
		t.Fatalf("a write refused for want of a leader: %v %v; want it retried on m2", resp, err)
	}
	cl.managers[0].set("")
	cl.managers[1].set("error reading from server: EOF")
	before := cl.managers[0].creates.Load()
	if _, err := create(); status.Code(err) != codes.Unavailable {
		t.Fatalf("a write that broke after it was sent: %v; want its Unavailable, not a retry", err)
	}
	if cl.managers[0].creates.Load() != before {
		t.Fatal("the write that may have been applied was sent again to another manager")
	}
}
