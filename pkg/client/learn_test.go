package client_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client"
	"github.com/warren-project/warren/pkg/client/clienttest"
)

// learningCluster is three managers that name each other, and a managers
// file beside the admin bundle.
func learningCluster(t *testing.T) (cl *cluster, file string) {
	t.Helper()
	cl = newCluster(t, "m1", "m2", "m3")
	addrs := []string{cl.managers[0].addr(), cl.managers[1].addr(), cl.managers[2].addr()}
	for _, m := range cl.managers {
		m.set("", addrs...)
	}
	return cl, client.DefaultManagersFile(cl.tlsDir)
}

func TestLearnManagers(t *testing.T) {
	cl, file := learningCluster(t)
	m1, m2 := cl.managers[0], cl.managers[1]
	c := newClient(t, m1.host(), client.WithTLSDir(cl.tlsDir), client.WithManagersFile(file))
	if got := c.Hosts(); !slices.Equal(got, []string{m1.host()}) {
		t.Fatalf("Hosts() before any call = %q; want the given one", got)
	}
	for range 3 {
		version(t, c)
	}
	want := []string{m1.host(), m2.host(), cl.managers[2].host()}
	if got := c.Hosts(); !slices.Equal(got, want) {
		t.Fatalf("Hosts() after a call = %q; want %q", got, want)
	}
	if n := m1.infos.Load(); n != 1 {
		t.Fatalf("m1 was asked for the managers %d times; want once per client", n)
	}
	m1.srv.Stop()
	if got := version(t, c); got != "m2" {
		t.Fatalf("answered by %s after m1 stopped, want m2 (learnt)", got)
	}

	// A later client given only the dead m1 fails over to the managers
	// kept in the file.
	later := newClient(t, m1.host(), client.WithTLSDir(cl.tlsDir), client.WithManagersFile(file))
	if got := later.Hosts(); !slices.Equal(got, want) {
		t.Fatalf("a later client's Hosts() = %q; want %q from %s", got, want, file)
	}
	if got := version(t, later); got != "m2" {
		t.Fatalf("a later client was answered by %s, want m2", got)
	}
}

func TestLearnFromGetClusterInfoItself(t *testing.T) {
	cl, _ := learningCluster(t)
	m1 := cl.managers[0]
	c := newClient(t, m1.host(), client.WithTLSDir(cl.tlsDir))
	if _, err := c.GetClusterInfo(testCtx(t), &api.GetClusterInfoRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := m1.infos.Load(); n != 1 {
		t.Fatalf("m1 got %d GetClusterInfo calls; want 1, the reply serving to learn", n)
	}
	if got := len(c.Hosts()); got != 3 {
		t.Fatalf("Hosts() = %q; want the three managers", c.Hosts())
	}
}

func TestCorruptManagersFileIgnored(t *testing.T) {
	cl, file := learningCluster(t)
	if err := os.WriteFile(file, []byte(`{"clusters": {"x": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	c := newClient(t, cl.managers[0].host(), client.WithTLSDir(cl.tlsDir), client.WithManagersFile(file),
		client.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), file) {
		t.Fatalf("no warning naming %s; logs:\n%s", file, logs.String())
	}
	version(t, c)
	// The next learning rewrites it.
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var saved struct{ Clusters map[string][]string }
	if err := json.Unmarshal(raw, &saved); err != nil {
		t.Fatalf("%s after learning: %v\n%s", file, err, raw)
	}
	if got := saved.Clusters[cl.tlsDir]; len(got) != 3 {
		t.Fatalf("%s keeps %q for %s; want the three managers\n%s", file, got, cl.tlsDir, raw)
	}
}

func TestManagersFileNeedsATCPHost(t *testing.T) {
	cl, file := learningCluster(t)
	version(t, newClient(t, cl.managers[0].host(), client.WithTLSDir(cl.tlsDir), client.WithManagersFile(file)))
	// A client of the local socket alone does not dial learnt managers:
	// they would need the TLS bundle, which it was not asked to use.
	sock := clienttest.Start(t, clienttest.New())
	c := newClient(t, sock, client.WithTLSDir(cl.tlsDir), client.WithManagersFile(file))
	version(t, c)
	if got := c.Hosts(); !slices.Equal(got, []string{sock}) {
		t.Fatalf("Hosts() = %q; want the socket only", got)
	}
}

func TestUnixSocketFirst(t *testing.T) {
	cl := newCluster(t, "m1")
	local := &manager{name: "local"}
	sock := clienttest.Start(t, local)
	c := newClient(t, cl.hosts()+","+sock, client.WithTLSDir(cl.tlsDir))
	if got := c.Hosts(); !slices.Equal(got, []string{sock, cl.managers[0].host()}) {
		t.Fatalf("Hosts() = %q; want the socket first", got)
	}
	if got := version(t, c); got != "local" {
		t.Fatalf("answered by %s; want the local manager", got)
	}
	// A dead local manager hands over to the remote one.
	dead := "unix://" + filepath.Join(t.TempDir(), "dead.sock")
	c = newClient(t, dead, client.WithHosts(cl.managers[0].host()), client.WithTLSDir(cl.tlsDir))
	if got := version(t, c); got != "m1" {
		t.Fatalf("answered by %s; want m1 after the dead socket", got)
	}
}

// A manager whose host is gone answers nothing at all (no refusal): the
// connect timeout moves the call on.
func TestFailoverFromSilentManager(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() }) // accepted by the kernel, never answered
	cl := newCluster(t, "m2")
	c := newClient(t, "tcp://"+lis.Addr().String()+","+cl.hosts(), client.WithTLSDir(cl.tlsDir),
		client.WithConnectTimeout(200*time.Millisecond))
	start := time.Now()
	if got := version(t, c); got != "m2" {
		t.Fatalf("answered by %s; want m2", got)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("failing over took %v; want about the connect timeout", d)
	}
}

func TestHostLists(t *testing.T) {
	tlsDir := clienttest.WriteAdminBundle(t, clienttest.New().CA(), t.TempDir())
	tests := []struct {
		name, host string
		more       []string
		env        string
		want       []string
	}{
		{"comma-separated", "tcp://a:1, tcp://b", nil, "", []string{"tcp://a:1", "tcp://b:2377"}},
		{"with WithHosts", "tcp://a:1", []string{"tcp://b:1,c:1"}, "", []string{"tcp://a:1", "tcp://b:1", "tcp://c:1"}},
		{"only WithHosts", "", []string{"tcp://b:1"}, "unix:///env.sock", []string{"tcp://b:1"}},
		{"duplicates go", "tcp://a:1,a:1,tcp://a", nil, "", []string{"tcp://a:1", "tcp://a:2377"}},
		{"unix first", "tcp://a:1,/run/w.sock", nil, "", []string{"unix:///run/w.sock", "tcp://a:1"}},
		{"environment list", "", nil, "tcp://a:1,tcp://b:1", []string{"tcp://a:1", "tcp://b:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(client.HostEnv, tt.env)
			c := newClient(t, tt.host, client.WithHosts(tt.more...), client.WithTLSDir(tlsDir))
			if got := c.Hosts(); !slices.Equal(got, tt.want) {
				t.Fatalf("Hosts() = %q; want %q", got, tt.want)
			}
			if c.Host() != tt.want[0] {
				t.Fatalf("Host() = %q; want %q", c.Host(), tt.want[0])
			}
		})
	}
}
