package lb

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/warren-project/warren/internal/testutil"
)

// host is a network namespace with one address: a container, an external
// client, or a remote node holding a backend.
type host struct {
	ns   string
	addr netip.Addr
}

// topo is a node namespace with a bridge and containers on it, an external
// client on a second link, and a remote node behind a link standing in for
// the WireGuard mesh (a veth: the rules only look at interface names):
//
//	ext 192.168.77.2 ── 192.168.77.1 [node] 10.200.3.1 ── bridge ── containers 10.200.3.10+
//	                                    └── "wg" 10.200.3.1/32 ── remote 10.200.4.2
type topo struct {
	t       *testing.T
	node    string
	cfg     Config
	gw      netip.Addr // the node's address on the bridge (and on the mesh link)
	nodeExt netip.Addr // the node's address facing ext
	ctrs    []host
	ext     host
	remote  host
}

// bridgeModes runs fn with br_netfilter's bridge-nf-call-iptables on and
// off in the node: on, a DNATed frame for a container of the same bridge
// is bridged (and its postrouting hook has no input interface); off, it is
// routed. Hosts differ (Docker loads br_netfilter), so the rules must work
// both ways.
func bridgeModes(t *testing.T, fn func(t *testing.T, brNetfilter bool)) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("br_netfilter=%v", on), func(t *testing.T) { fn(t, on) })
	}
}

// newTopo builds the topology with that many containers. Their bridge
// ports are in hairpin mode, as they must be for a container to reach a
// service landing on itself when br_netfilter bridges the DNATed frame
// back out of the port it came in.
func newTopo(t *testing.T, containers int, brNetfilter bool) *topo {
	t.Helper()
	testutil.RequireRoot(t, "ip")
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	sfx := hex.EncodeToString(b)
	tp := &topo{
		t: t, node: "lb-" + sfx + "-node",
		cfg: Config{Table: "warren", Bridge: "wb" + sfx, WireGuard: "wg" + sfx,
			Subnet: netip.MustParsePrefix("10.200.0.0/16")},
		gw: addr("10.200.3.1"), nodeExt: addr("192.168.77.1"),
	}
	tp.addNS(tp.node)
	tp.setBrNetfilter(brNetfilter)
	tp.ip(tp.node, "link", "add", tp.cfg.Bridge, "type", "bridge")
	tp.ip(tp.node, "addr", "add", "10.200.3.1/24", "dev", tp.cfg.Bridge)
	tp.ip(tp.node, "link", "set", tp.cfg.Bridge, "up")
	// The node's own connections to VIPs need a route; a real node has a default one.
	tp.ip(tp.node, "route", "add", "10.201.0.0/16", "dev", tp.cfg.Bridge)
	for i := range containers {
		c := host{ns: fmt.Sprintf("lb-%s-c%d", sfx, i), addr: netip.AddrFrom4([4]byte{10, 200, 3, byte(10 + i)})}
		tp.link(c, fmt.Sprintf("v%s%d", sfx, i), "24", "10.200.3.1")
		tp.ip(tp.node, "link", "set", fmt.Sprintf("v%s%d", sfx, i), "master", tp.cfg.Bridge, "up")
		tp.ip(tp.node, "link", "set", fmt.Sprintf("v%s%d", sfx, i), "type", "bridge_slave", "hairpin", "on")
		tp.ctrs = append(tp.ctrs, c)
	}
	tp.ext = host{ns: "lb-" + sfx + "-ext", addr: addr("192.168.77.2")}
	tp.link(tp.ext, "e"+sfx, "24", "192.168.77.1")
	tp.ip(tp.node, "addr", "add", "192.168.77.1/24", "dev", "e"+sfx)
	tp.ip(tp.node, "link", "set", "e"+sfx, "up")
	tp.remote = host{ns: "lb-" + sfx + "-rem", addr: addr("10.200.4.2")}
	tp.link(tp.remote, tp.cfg.WireGuard, "32", "")
	tp.ip(tp.remote.ns, "route", "add", "10.200.0.0/16", "via", "10.200.3.1", "dev", "eth0", "onlink")
	tp.ip(tp.node, "addr", "add", "10.200.3.1/32", "dev", tp.cfg.WireGuard)
	tp.ip(tp.node, "link", "set", tp.cfg.WireGuard, "up")
	tp.ip(tp.node, "route", "add", "10.200.4.0/24", "via", "10.200.4.2", "dev", tp.cfg.WireGuard, "onlink")
	return tp
}

// setBrNetfilter turns bridge-nf-call-iptables on or off in the node (the
// setting is per namespace), skipping the test if it needs br_netfilter and
// the module is not loaded.
func (tp *topo) setBrNetfilter(on bool) {
	tp.t.Helper()
	const path = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	val := map[bool]string{true: "1\n", false: "0\n"}[on]
	var err error
	inNS(tp.t, tp.node, func() { err = os.WriteFile(path, []byte(val), 0o644) })
	switch {
	case errors.Is(err, fs.ErrNotExist) && on:
		tp.t.Skip("br_netfilter is not loaded (modprobe br_netfilter)")
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		tp.t.Fatalf("set bridge-nf-call-iptables in %s: %v", tp.node, err)
	}
}

// addNS creates a namespace with loopback up, deleted when the test ends.
func (tp *topo) addNS(ns string) {
	tp.t.Helper()
	run(tp.t, "ip", "netns", "add", ns)
	tp.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	tp.ip(ns, "link", "set", "lo", "up")
}

// link creates h's namespace joined to the node by a veth: nodeEnd in the
// node, eth0 in h with h.addr/bits and a default route via gw (if any).
func (tp *topo) link(h host, nodeEnd, bits, gw string) {
	tp.t.Helper()
	tp.addNS(h.ns)
	tp.ip(tp.node, "link", "add", nodeEnd, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
	tp.ip(h.ns, "addr", "add", h.addr.String()+"/"+bits, "dev", "eth0")
	tp.ip(h.ns, "link", "set", "eth0", "up")
	if gw != "" {
		tp.ip(h.ns, "route", "add", "default", "via", gw)
	}
}

func (tp *topo) ip(ns string, args ...string) {
	tp.t.Helper()
	run(tp.t, "ip", append([]string{"-n", ns}, args...)...)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// inNS runs fn on an OS thread moved into namespace ns; sockets fn opens
// stay in ns. The thread goes back to the test's namespace afterwards, or
// dies with its goroutine if it cannot.
func inNS(t testing.TB, ns string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current network namespace: %v", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open network namespace %s: %v", ns, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter network namespace %s: %v", ns, err)
	}
	defer func() {
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	fn()
}

// sync runs l.Sync in the node's namespace.
func (tp *topo) sync(l *LB, services ...Service) {
	tp.t.Helper()
	var err error
	inNS(tp.t, tp.node, func() { err = l.Sync(services) })
	if err != nil {
		tp.t.Fatalf("Sync: %v", err)
	}
}

// newLB returns an LB for the topology, whose table is deleted when the
// test ends (with the namespace anyway).
func (tp *topo) newLB() *LB {
	tp.t.Helper()
	l, err := New(tp.cfg)
	if err != nil {
		tp.t.Fatal(err)
	}
	return l
}
