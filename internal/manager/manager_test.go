package manager

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/network/fakenet"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/fake"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/testutil"
	"github.com/warren-project/warren/pkg/client"
)

const image = "docker.io/library/busybox:latest"

// testManager runs a manager in-process with a fake executor, real Raft,
// real gRPC and TLS on loopback.
type testManager struct {
	*Manager
	dir    string
	exec   *fake.Executor
	cancel context.CancelFunc
	done   chan error
}

func startManager(t *testing.T, dir string, exec *fake.Executor) *testManager {
	t.Helper()
	return startManagerWith(t, dir, exec, nil)
}

// startManagerWith starts a manager whose config change adjusts first.
func startManagerWith(t *testing.T, dir string, exec *fake.Executor, change func(*Config)) *testManager {
	t.Helper()
	cfg := Config{
		DataDir: filepath.Join(dir, "data"), SocketPath: filepath.Join(dir, "w.sock"),
		ListenAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), RESTAddr: testutil.FreeAddr(t),
		Executor: exec, Network: fakenet.New(), HeartbeatPeriod: time.Second,
		RaftHeartbeat: 100 * time.Millisecond, RaftElection: 100 * time.Millisecond, RaftLeaderLease: 50 * time.Millisecond,
	}
	if change != nil {
		change(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tm := &testManager{Manager: m, dir: dir, exec: exec, cancel: cancel, done: make(chan error, 1)}
	go func() { tm.done <- m.Run(ctx) }()
	select {
	case <-m.Ready():
	case err := <-tm.done:
		t.Fatalf("manager stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("manager not ready within 30s")
	}
	t.Cleanup(tm.stop)
	return tm
}

func (tm *testManager) stop() {
	tm.cancel()
	<-tm.done
	tm.done <- nil // a second stop returns at once
}

func (tm *testManager) localClient(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New("unix://" + tm.cfg.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "wrm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func createService(t *testing.T, c *client.Client, name string, replicas uint64) *api.Service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
		Name: name,
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}},
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox", Args: []string{"sleep", "1000"}}},
	}})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if err := c.WaitForService(ctx, resp.GetService().GetId(), nil); err != nil {
		t.Fatalf("wait for %s: %v", name, err)
	}
	return resp.GetService()
}

func runningContainers(t *testing.T, exec runtime.Executor) int {
	t.Helper()
	cs, err := exec.List(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cs {
		if c.State == runtime.StateRunning {
			n++
		}
	}
	return n
}

// One manager is a whole cluster: a service's tasks run on its own node,
// reached through the same session protocol a remote worker uses.
func TestOneNodeClusterRunsServices(t *testing.T) {
	exec := fake.New()
	exec.AddImage(image)
	tm := startManager(t, shortDir(t), exec)
	c := tm.localClient(t)
	createService(t, c, "web", 3)
	if n := runningContainers(t, exec); n != 3 {
		t.Fatalf("%d containers running, want 3", n)
	}
	nodes, err := c.ListNodes(context.Background(), &api.ListNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.GetNodes()) != 1 || nodes.GetNodes()[0].GetStatus().GetState() != api.NodeState_NODE_STATE_READY {
		t.Fatalf("nodes = %v, want one ready node", nodes.GetNodes())
	}
}

// A manager restarted on its data dir is the same cluster with the same
// services, and adopts its containers instead of starting them again.
func TestRestartResumesCluster(t *testing.T) {
	exec := fake.New()
	exec.AddImage(image)
	dir := shortDir(t)
	tm := startManager(t, dir, exec)
	c := tm.localClient(t)
	svc := createService(t, c, "web", 2)
	info, err := c.GetClusterInfo(context.Background(), &api.GetClusterInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	tm.stop()
	if n := runningContainers(t, exec); n != 2 {
		t.Fatalf("%d containers running after the manager stopped, want 2", n)
	}

	tm2 := startManager(t, dir, exec)
	c2 := tm2.localClient(t)
	info2, err := c2.GetClusterInfo(context.Background(), &api.GetClusterInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info2.GetCluster().GetId() != info.GetCluster().GetId() || info2.GetManagerNodeId() != info.GetManagerNodeId() {
		t.Fatalf("restart made a new cluster or node: %v then %v", info.GetCluster().GetId(), info2.GetCluster().GetId())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c2.WaitForService(ctx, svc.GetId(), nil); err != nil {
		t.Fatal(err)
	}
	tasks, err := c2.ListTasks(ctx, &api.ListTasksRequest{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks.GetTasks()) != 2 {
		t.Fatalf("%d tasks after restart, want the same 2", len(tasks.GetTasks()))
	}
	if n := runningContainers(t, exec); n != 2 {
		t.Fatalf("%d containers running after restart, want the same 2", n)
	}
}

// Remote access is mutual TLS: the admin bundle written at init works for
// gRPC and the JSON gateway; no certificate, another CA's, or a worker's
// is refused, and nothing changes.
func TestRemoteAccessNeedsAdminCertificate(t *testing.T) {
	exec := fake.New()
	exec.AddImage(image)
	tm := startManager(t, shortDir(t), exec)
	adminDir := filepath.Join(tm.cfg.DataDir, "admin")
	host := "tcp://" + tm.Addr().String()

	admin, err := client.New(host, client.WithTLSDir(adminDir))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	createService(t, admin, "web", 1)

	rest := func(t *testing.T, certDir string) (int, []byte, error) {
		t.Helper()
		pool := tm.creds.CA.Pool()
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
		if certDir != "" {
			pair, err := tls.LoadX509KeyPair(filepath.Join(certDir, "client.crt"), filepath.Join(certDir, "client.key"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := hc.Get("https://" + tm.RESTAddr().String() + "/v1/services")
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body, nil
	}

	t.Run("admin over REST", func(t *testing.T) {
		code, body, err := rest(t, adminDir)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /v1/services = %d %s, %v", code, body, err)
		}
		var out struct {
			Services []struct {
				Spec struct{ Name string } `json:"spec"`
			} `json:"services"`
		}
		if err := json.Unmarshal(body, &out); err != nil || len(out.Services) != 1 || out.Services[0].Spec.Name != "web" {
			t.Fatalf("REST answer %s (%v), want the web service", body, err)
		}
	})
	t.Run("no certificate over REST", func(t *testing.T) {
		if code, _, err := rest(t, ""); err == nil {
			t.Fatalf("REST without a certificate answered %d", code)
		}
	})

	workerDir := t.TempDir()
	certPEM, keyPEM, err := tm.creds.CA.Issue("w1", ca.RoleWorker, tm.creds.ClusterID, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeBundle(t, workerDir, tm.creds.CA.CertPEM(), certPEM, keyPEM)
	t.Run("worker certificate over REST", func(t *testing.T) {
		if code, _, err := rest(t, workerDir); err != nil || code != http.StatusForbidden {
			t.Fatalf("REST with a worker certificate = %d, %v; want 403", code, err)
		}
	})

	otherCA, err := ca.Generate("other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignDir := t.TempDir()
	fc, fk, err := otherCA.Issue("admin-x", ca.RoleAdmin, "other", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeBundle(t, foreignDir, tm.creds.CA.CertPEM(), fc, fk)

	for name, tc := range map[string]struct {
		dir  string
		code codes.Code
	}{
		"worker certificate": {workerDir, codes.PermissionDenied},
		"another CA's admin": {foreignDir, codes.Unauthenticated},
	} {
		t.Run(name+" over gRPC", func(t *testing.T) {
			c, err := client.New(host, client.WithTLSDir(tc.dir))
			if err == nil {
				defer c.Close()
				_, err = c.CreateService(context.Background(), &api.CreateServiceRequest{Spec: &api.ServiceSpec{
					Name: "intruder", Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox"}},
				}})
			}
			if err == nil {
				t.Fatal("call accepted")
			}
			if got := client.Code(err); got != tc.code {
				t.Fatalf("code %v, want %v (%v)", got, tc.code, err)
			}
		})
	}
	t.Run("no client certificate over gRPC", func(t *testing.T) {
		creds := credentials.NewTLS(&tls.Config{RootCAs: tm.creds.CA.Pool(), MinVersion: tls.VersionTLS13})
		conn, err := grpc.NewClient(tm.Addr().String(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = api.NewControlClient(conn).ListServices(ctx, &api.ListServicesRequest{})
		if code := status.Code(err); code != codes.Unavailable && code != codes.Unauthenticated {
			t.Fatalf("call without a certificate: %v, want it refused", err)
		}
	})
	list, err := admin.ListServices(context.Background(), &api.ListServicesRequest{})
	if err != nil || len(list.GetServices()) != 1 {
		t.Fatalf("services after refused calls = %v, %v; want only web", list.GetServices(), err)
	}
}

func writeBundle(t *testing.T, dir string, caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	files := map[string][]byte{"ca.crt": caPEM, "client.crt": certPEM, "client.key": keyPEM}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
