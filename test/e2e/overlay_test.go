package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/testutil"
)

// hosts are network namespaces on a bridge of their own, each a "host"
// with one address: the multi-host setup of the overlay test.
type hosts struct {
	bridge string
	names  []string
	addrs  []string
}

func ipCmd(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newHosts makes n hosts on 10.99.X.0/24 (X random), reachable from the
// test's own namespace at .254, and removes them when the test ends.
func newHosts(t testing.TB, n int) *hosts {
	t.Helper()
	sfx := fmt.Sprintf("%04x", rand.N(0x10000))
	net3 := fmt.Sprintf("10.99.%d", 10+rand.N(200))
	h := &hosts{bridge: "wrnt" + sfx}
	t.Cleanup(h.destroy)
	ipCmd(t, "link", "add", h.bridge, "type", "bridge")
	ipCmd(t, "addr", "add", net3+".254/24", "dev", h.bridge)
	ipCmd(t, "link", "set", h.bridge, "up")
	for i := range n {
		name := fmt.Sprintf("wrnh%s%c", sfx, 'a'+i)
		addr := fmt.Sprintf("%s.%d", net3, i+1)
		h.names, h.addrs = append(h.names, name), append(h.addrs, addr)
		ipCmd(t, "netns", "add", name)
		ipCmd(t, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name)
		ipCmd(t, "link", "set", name, "master", h.bridge, "up")
		ipCmd(t, "-n", name, "addr", "add", addr+"/24", "dev", "eth0")
		ipCmd(t, "-n", name, "link", "set", "eth0", "up")
		ipCmd(t, "-n", name, "link", "set", "lo", "up")
		ipCmd(t, "-n", name, "route", "add", "default", "via", net3+".254")
	}
	return h
}

func (h *hosts) destroy() {
	for _, name := range h.names {
		_ = exec.Command("ip", "netns", "del", name).Run()
	}
	_ = exec.Command("ip", "link", "del", h.bridge).Run()
}

// Three hosts, each its own namespace running the real binary with its own
// containerd: a manager on A, workers on B and C. Two httpd replicas run on
// B and C; from a container on A the service answers by name through its
// VIP, tasks.web lists both, the traffic crosses WireGuard, and the
// published port answers on A, where no replica runs.
func TestOverlayAcrossHosts(t *testing.T) {
	testutil.RequireRoot(t, "containerd", "containerd-shim-runc-v2", "runc", "busybox", "ip", "nsenter")
	h := newHosts(t, 3)
	a := h.addrs[0]
	c := newClusterIn(t, h.names[0], "--listen-addr", a+":2377", "--advertise-addr", a, "--raft-addr", a+":2379", "--heartbeat-period", "1s")
	wb := c.joinWorkerIn("b", h.names[1], h.addrs[1])
	wc := c.joinWorkerIn("cc", h.names[2], h.addrs[2])
	c.importBusybox(testImage)

	c.mustWarren("service", "create", "web", "--image", testImage, "--replicas", "2",
		"--constraint", "node.role==worker", "--max-replicas-per-node", "1", "--publish", "8080:80",
		"--health-cmd", "test -f /www/index.html", "--health-interval", "1s", "--health-retries", "1", "--stop-grace-period", "1s",
		"--", "sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www")
	c.mustWarren("service", "create", "client", "--image", testImage, "--constraint", "node.role==manager",
		"--", "sleep", "100000")
	var addrs []string
	for _, tk := range c.tasks("web") {
		addrs = append(addrs, tk.GetAddress())
	}

	// The mesh needs a handshake each way first; WireGuard retries every 5 s.
	get := "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 web 80 | tail -1"
	seen := map[string]bool{}
	testutil.WaitFor(t, 90*time.Second, "both replicas answering http://web/ from host A's container", func() bool {
		out, _, err := c.warren("exec", "client", "--", "sh", "-c", get)
		if err == nil && strings.TrimSpace(out) != "" {
			seen[strings.TrimSpace(out)] = true
		}
		return len(seen) == 2
	})

	out := c.mustWarren("exec", "client", "--", "nslookup", "tasks.web")
	for _, a := range addrs {
		if !strings.Contains(out, a) {
			t.Errorf("tasks.web does not list %s:\n%s", a, out)
		}
	}

	// A's peers report bytes both ways (nodes report every 5 s).
	testutil.WaitFor(t, 30*time.Second, "host A's WireGuard peers carrying traffic", func() bool {
		var nets []struct {
			Nodes []struct {
				Peers []struct {
					RxBytes, TxBytes string
				}
				WireguardEndpoint string
			}
		}
		if err := json.Unmarshal([]byte(c.mustWarren("network", "inspect", "--format", "json")), &nets); err != nil || len(nets) != 1 {
			t.Fatalf("network inspect --format json: %v", err)
		}
		for _, n := range nets[0].Nodes {
			if !strings.HasPrefix(n.WireguardEndpoint, a+":") {
				continue
			}
			busy := 0
			for _, p := range n.Peers {
				if p.RxBytes != "" && p.RxBytes != "0" && p.TxBytes != "" && p.TxBytes != "0" {
					busy++
				}
			}
			return busy == 2
		}
		return false
	})
	t.Logf("network inspect:\n%s", c.mustWarren("network", "inspect"))

	// Container to container across hosts, over the overlay, against the
	// plain veth path between the same two hosts.
	onNode := map[string]*api.Task{}
	for _, tk := range c.tasks("web") {
		if tk.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING {
			onNode[tk.GetNodeId()] = tk
		}
	}
	tb, tc := onNode[wb.nodeID], onNode[wc.nodeID]
	if tb == nil || tc == nil {
		t.Fatalf("web's replicas are not one on each worker: %v", onNode)
	}
	const size = 256 << 20
	over := throughput(t, filepath.Join(wb.dir, "network", "netns", tb.GetId()), filepath.Join(wc.dir, "network", "netns", tc.GetId()),
		":5001", net.JoinHostPort(tc.GetAddress(), "5001"), size)
	plain := throughput(t, h.names[1], h.names[2], ":5002", net.JoinHostPort(h.addrs[2], "5002"), size)
	t.Logf("FIGURE overlay: TCP throughput container to container across hosts: %.2f Gbit/s over the overlay (WireGuard %s) vs %.2f Gbit/s on the plain veth between the hosts (%d MiB each)",
		over, wireguardMode(t, wb.logPath), plain, size>>20)

	// The routing mesh: port 8080 of host A, where no replica runs.
	testutil.WaitFor(t, 30*time.Second, "the published port answering on host A", func() bool {
		body, err := httpGet(net.JoinHostPort(a, "8080"))
		return err == nil && strings.Contains(body, "200 OK")
	})
	// What people read: the VIP and ports in service ls, each task's
	// address in service ps.
	vipWeb := c.mustVIP("web")
	if ls := c.mustWarren("service", "ls"); !strings.Contains(ls, vipWeb) || !strings.Contains(ls, "*:8080->80/tcp") {
		t.Errorf("service ls does not show web's VIP %s and port:\n%s", vipWeb, ls)
	}
	ps := c.mustWarren("service", "ps", "web")
	for _, addr := range addrs {
		if !strings.Contains(ps, addr) {
			t.Errorf("service ps does not show the address %s:\n%s", addr, ps)
		}
	}

	took, err := requestTimes(net.JoinHostPort(a, "8080"), 200)
	if err != nil {
		t.Fatalf("published port on host A: %v", err)
	}
	t.Logf("FIGURE overlay: HTTP request to a published port on a node without replicas (DNAT, then WireGuard to the replica's node): p50 %v, p99 %v over %d requests",
		took[len(took)/2].Round(time.Microsecond), took[len(took)*99/100].Round(time.Microsecond), len(took))
	clientNS := filepath.Join(c.dir, "data", "network", "netns", c.tasks("client")[0].GetId())
	vipP50, vipP99 := latencyFrom(t, clientNS, net.JoinHostPort(c.mustVIP("web"), "80"), 200)
	directP50, directP99 := latencyFrom(t, clientNS, net.JoinHostPort(tb.GetAddress(), "80"), 200)
	t.Logf("FIGURE overlay: HTTP request from a container to replicas on other hosts: through the VIP p50 %v p99 %v; to a task's address p50 %v p99 %v (200 requests each)",
		vipP50.Round(time.Microsecond), vipP99.Round(time.Microsecond), directP50.Round(time.Microsecond), directP99.Round(time.Microsecond))

	// A rolling update drops no request: each replica leaves load
	// balancing and drains before it is signalled (moby#30321).
	var sent, failed atomic.Int32
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for {
			select {
			case <-stopLoad:
				return
			default:
			}
			sent.Add(1)
			if body, err := httpGet(net.JoinHostPort(a, "8080")); err != nil || !strings.Contains(body, "200 OK") {
				failed.Add(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	c.mustWarren("service", "update", "web", "--env-add", "ROUND=2")
	close(stopLoad)
	<-loadDone
	t.Logf("rolling update of web under load through the routing mesh: %d requests, %d failed", sent.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during the rolling update", failed.Load(), sent.Load())
	}

	// A replica turning unhealthy leaves the VIP, and comes back once its
	// restart makes it healthy again.
	victim := c.tasks("web")[0]
	for _, tk := range c.tasks("web") {
		if tk.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING {
			victim = tk
		}
	}
	failedAt := time.Now()
	c.mustWarren("exec", victim.GetId(), "--", "rm", "/www/index.html")
	testutil.WaitFor(t, 30*time.Second, "the unhealthy replica out of web's backends", func() bool {
		return !slices.Contains(c.backends("web"), victim.GetAddress())
	})
	t.Logf("FIGURE overlay: from a replica's check starting to fail (interval 1s, retries 1) to its removal from the network map: %v",
		time.Since(failedAt).Round(10*time.Millisecond))
	testutil.WaitFor(t, 60*time.Second, "the restarted replica back in web's backends", func() bool {
		return slices.Contains(c.backends("web"), victim.GetAddress())
	})

	// A worker restart rebuilds its network from the map it kept: traffic
	// flows again, with one route per peer block and no duplicates.
	wb.kill()
	wb.start()
	seen = map[string]bool{}
	testutil.WaitFor(t, 90*time.Second, "both replicas answering again after b restarted", func() bool {
		out, _, err := c.warren("exec", "client", "--", "sh", "-c", get)
		if err == nil && strings.TrimSpace(out) != "" {
			seen[strings.TrimSpace(out)] = true
		}
		return len(seen) == 2
	})
	if routes := meshRoutes(t, h.names[1]); len(routes) != 2 {
		t.Errorf("host B after its restart has mesh routes %q, want one per other node", routes)
	}

	// A host-mode port answers only on the node that runs the task.
	c.mustWarren("service", "create", "hostport", "--image", testImage, "--constraint", "node.id=="+wc.nodeID,
		"--publish", "mode=host,published=8090,target=80", "--", "httpd", "-f", "-p", "80", "-h", "/www")
	testutil.WaitFor(t, 30*time.Second, "the host-mode port answering on host C", func() bool {
		body, err := httpGet(net.JoinHostPort(h.addrs[2], "8090"))
		return err == nil && strings.Contains(body, "200 OK")
	})
	if _, err := httpGet(net.JoinHostPort(a, "8090")); err == nil {
		t.Errorf("the host-mode port answers on host A, which runs no task of the service")
	}
	c.mustWarren("service", "rm", "hostport")

	// Removing the service releases its tasks' namespaces and veths, and
	// its rules.
	c.mustWarren("service", "rm", "web")
	if _, err := exec.LookPath("nft"); err == nil {
		testutil.WaitFor(t, 10*time.Second, "web's VIP gone from host A's rules", func() bool {
			out, err := exec.Command("nsenter", "--net=/run/netns/"+h.names[0], "nft", "list", "table", "ip", "warren").CombinedOutput()
			return err == nil && !strings.Contains(string(out), vipWeb)
		})
	}
	for _, w := range []*workerProc{wb, wc} {
		if left, _ := filepath.Glob(filepath.Join(w.dir, "network", "netns", "*")); len(left) > 0 {
			t.Errorf("%s keeps task namespaces after service rm: %v", w.name, left)
		}
		if out, _ := exec.Command("ip", "-n", w.netns, "-br", "link").Output(); strings.Contains(string(out), "wrn") {
			t.Errorf("%s keeps task veths after service rm:\n%s", w.name, out)
		}
	}

	// Removing a node takes it out of every other node's mesh.
	wc.kill()
	c.mustWarren("node", "rm", "--force", wc.nodeID)
	testutil.WaitFor(t, 30*time.Second, "host A's mesh without the removed node", func() bool {
		return len(meshRoutes(t, h.names[0])) == 1
	})
}

// meshRoutes are the routes through the WireGuard link in namespace ns
// (Warren marks them with protocol 87).
// wireguardMode is the WireGuard implementation a node's overlay runs,
// as its log says ("kernel" or "userspace").
func wireguardMode(t *testing.T, logPath string) string {
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`wireguard\.mode=(\w+)`).FindSubmatch(raw); m != nil {
		return string(m[1])
	}
	return "mode not logged"
}

func meshRoutes(t *testing.T, ns string) []string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "route", "show", "proto", "87").Output()
	if err != nil {
		t.Fatalf("ip route in %s: %v", ns, err)
	}
	var routes []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			routes = append(routes, l)
		}
	}
	return routes
}

// httpGet sends one HTTP/1.0 GET to addr and returns the raw answer.
func httpGet(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprint(conn, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	body, err := io.ReadAll(conn)
	return string(body), err
}

// mustVIP is a service's virtual IP.
func (c *cluster) mustVIP(service string) string {
	c.t.Helper()
	resp, err := c.client.GetService(context.Background(), &api.GetServiceRequest{Service: service})
	if err != nil || resp.GetService().GetEndpoint().GetVip() == "" {
		c.t.Fatalf("VIP of %s: %v %v", service, resp.GetService().GetEndpoint(), err)
	}
	return resp.GetService().GetEndpoint().GetVip()
}

// backends are the addresses of a service's backends, as managers send
// them to nodes.
func (c *cluster) backends(service string) []string {
	c.t.Helper()
	var nets []struct {
		Services []struct {
			Name     string
			Backends []struct{ Address string }
		}
	}
	if err := json.Unmarshal([]byte(c.mustWarren("network", "inspect", "--format", "json")), &nets); err != nil || len(nets) != 1 {
		c.t.Fatalf("network inspect --format json: %v", err)
	}
	var out []string
	for _, s := range nets[0].Services {
		if s.Name == service {
			for _, b := range s.Backends {
				out = append(out, b.Address)
			}
		}
	}
	return out
}
