// Package e2e runs the real warren binary against real containerd: a
// manager process per test, driven through its CLI, inspected through the
// Go client and containerd itself.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/ociimage"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/containerd"
	"github.com/warren-project/warren/internal/testutil"
	"github.com/warren-project/warren/pkg/client"
)

// binary is the warren binary under test, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	helperMain()
	code := func() int {
		dir, err := os.MkdirTemp("", "warren-e2e-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "warren")
		build := exec.Command("go", "build", "-o", binary, "../../cmd/warren")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build warren:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

const testImage = "warren.local/busybox:e2e"

// cluster is one manager process with its own data dir, socket, ports and
// containerd.
type cluster struct {
	t       testing.TB
	netns   string // the network namespace the manager runs in; "" for the host's
	dir     string
	sock    string
	args    []string
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
	client  *client.Client
	exec    *containerd.Executor
}

func newCluster(t testing.TB, extraArgs ...string) *cluster {
	t.Helper()
	return newClusterIn(t, "", extraArgs...)
}

// newClusterIn starts the manager in network namespace netns.
func newClusterIn(t testing.TB, netns string, extraArgs ...string) *cluster {
	t.Helper()
	testutil.RequireRoot(t, "containerd", "containerd-shim-runc-v2", "runc", "busybox")
	// A short path: containerd's socket lives under it (unix sockets allow ~100 bytes).
	dir, err := os.MkdirTemp("/tmp", "wre")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, netns: netns, dir: dir, sock: filepath.Join(dir, "warren.sock"), logPath: filepath.Join(dir, "manager.log")}
	c.args = []string{"cluster", "init", "--data-dir", filepath.Join(dir, "data"), "--socket", c.sock,
		"--listen-addr", testutil.FreeAddr(t), "--raft-addr", testutil.FreeAddr(t), "--rest-addr", testutil.FreeAddr(t),
		"--containerd-socket", filepath.Join(dir, "none.sock")}
	c.args = append(c.args, extraArgs...)
	t.Cleanup(c.destroy)
	c.start()
	return c
}

// start runs the manager and waits until it answers.
func (c *cluster) start() {
	c.t.Helper()
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	c.cmd = inNetns(c.netns, binary, c.args...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	logf.Close()
	c.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(c.cmd, c.exited)
	if c.client == nil {
		if c.client, err = client.New("unix://" + c.sock); err != nil {
			c.t.Fatal(err)
		}
	}
	testutil.WaitFor(c.t, 60*time.Second, "manager answering on "+c.sock, func() bool {
		select {
		case <-c.exited:
			c.t.Fatalf("manager exited:\n%s", c.log())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.client.GetClusterInfo(ctx, &api.GetClusterInfoRequest{})
		return err == nil
	})
	if c.exec == nil {
		c.exec, err = containerd.New(context.Background(), containerd.Config{Address: filepath.Join(c.dir, "data", "containerd", "containerd.sock")})
		if err != nil {
			c.t.Fatalf("connect to the manager's containerd: %v", err)
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (c *cluster) stop() {
	c.t.Helper()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		c.t.Fatalf("manager did not stop within 30s of SIGTERM:\n%s", c.log())
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		c.t.Errorf("manager exited with code %d after SIGTERM:\n%s", code, c.log())
	}
	c.cmd = nil
	if c.exec != nil {
		_ = c.exec.Close()
		c.exec = nil
	}
}

// destroy removes every container the test left, stops the manager and
// its containerd, and deletes the data dir.
func (c *cluster) destroy() {
	if c.t.Failed() {
		c.t.Logf("manager log:\n%s", c.log())
	}
	if c.cmd == nil {
		c.start() // containerd must run to remove containers
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Remove services first: containers removed behind the agent's back
	// would be restarted by their restart policy.
	if list, err := c.client.ListServices(ctx, &api.ListServicesRequest{}); err == nil {
		for _, svc := range list.GetServices() {
			if _, err := c.client.RemoveService(ctx, &api.RemoveServiceRequest{Service: svc.GetId()}); err != nil {
				c.t.Logf("cleanup: remove service %s: %v", svc.GetSpec().GetName(), err)
			}
		}
		for {
			resp, err := c.client.ListTasks(ctx, &api.ListTasksRequest{})
			if err != nil || len(resp.GetTasks()) == 0 {
				break
			}
			// Test containers (sleep as PID 1) ignore SIGTERM: spare the
			// stop grace period.
			for _, ctr := range c.running("") {
				_ = c.exec.Kill(ctx, ctr.ID, syscall.SIGKILL)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if cs, err := c.exec.List(ctx, nil); err == nil {
		for _, ctr := range cs {
			if err := c.exec.Remove(ctx, ctr.ID); err != nil {
				c.t.Logf("cleanup: remove container %s: %v", ctr.ID, err)
			}
		}
	}
	c.stop()
	if c.client != nil {
		_ = c.client.Close()
	}
	releaseNetns(c.t, filepath.Join(c.dir, "data"))
	_ = os.RemoveAll(c.dir)
}

// inNetns is a command to run in network namespace ns ("" for the host's).
// nsenter enters the network namespace only: `ip netns exec` would also
// remount /sys, hiding the cgroup mounts runc needs.
func inNetns(ns, name string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns, name}, args...)...)
}

// releaseNetns unmounts the task namespaces a node left in its data dir
// (the agent releases them as tasks go; this catches a killed node's), so
// their veths and addresses do not outlive the test.
func releaseNetns(t testing.TB, dataDir string) {
	files, _ := filepath.Glob(filepath.Join(dataDir, "network", "netns", "*"))
	for _, f := range files {
		if err := syscall.Unmount(f, syscall.MNT_DETACH); err == nil {
			t.Logf("cleanup: released the namespace %s", f)
		}
	}
}

func (c *cluster) log() string {
	data, _ := os.ReadFile(c.logPath)
	if len(data) > 8000 {
		data = data[len(data)-8000:]
	}
	return string(data)
}

// warren runs the CLI against this cluster.
func (c *cluster) warren(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(binary, append([]string{"-H", "unix://" + c.sock}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func (c *cluster) mustWarren(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.warren(args...)
	if err != nil {
		c.t.Fatalf("warren %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// importBusybox builds a busybox image and imports it through the CLI.
func (c *cluster) importBusybox(ref string) {
	c.t.Helper()
	path := filepath.Join(c.dir, "image.tar")
	if err := os.WriteFile(path, testutil.BusyboxImage(c.t, ref, ociimage.Config{}), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.mustWarren("image", "import", path)
}

// tasks lists a service's tasks.
func (c *cluster) tasks(service string) []*api.Task {
	c.t.Helper()
	resp, err := c.client.ListTasks(context.Background(), &api.ListTasksRequest{Service: service})
	if err != nil {
		c.t.Fatalf("list tasks of %s: %v", service, err)
	}
	return resp.GetTasks()
}

// running returns the service's containers that containerd runs (every
// service's, for "").
func (c *cluster) running(service string) []runtime.Container {
	c.t.Helper()
	var labels map[string]string
	if service != "" {
		labels = map[string]string{"warren.service.name": service}
	}
	cs, err := c.exec.List(context.Background(), labels)
	if err != nil {
		c.t.Fatalf("list containers: %v", err)
	}
	var out []runtime.Container
	for _, ctr := range cs {
		if ctr.State == runtime.StateRunning {
			out = append(out, ctr)
		}
	}
	return out
}

// containers returns all of the service's containers, running or not.
func (c *cluster) containers(service string) []runtime.Container {
	c.t.Helper()
	cs, err := c.exec.List(context.Background(), map[string]string{"warren.service.name": service})
	if err != nil {
		c.t.Fatalf("list containers: %v", err)
	}
	return cs
}

// nodeID is the manager's own node ID.
func (c *cluster) nodeID() string {
	c.t.Helper()
	info, err := c.client.GetClusterInfo(context.Background(), &api.GetClusterInfoRequest{})
	if err != nil {
		c.t.Fatal(err)
	}
	return info.GetManagerNodeId()
}

func alive(pid uint32) bool { return pid > 0 && syscall.Kill(int(pid), 0) == nil }
