package bridge

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestAttachConnects attaches two tasks at once and shows each reaching
// the other and the gateway over the bridge.
func TestAttachConnects(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "10.200.3.1/24")
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var as [2]Attachment
	var errs [2]error
	for i, id := range []string{"task-a-" + randHex(3), "task-b-" + randHex(3)} {
		wg.Go(func() {
			as[i], errs[i] = n.Attach(t.Context(), AttachOptions{TaskID: id, Address: netip.AddrFrom4([4]byte{10, 200, 3, byte(7 + i)})})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b := as[0], as[1]
	if a.Address.String() != "10.200.3.7/24" || b.Address.String() != "10.200.3.8/24" {
		t.Fatalf("addresses %s, %s: want 10.200.3.7/24 and 10.200.3.8/24", a.Address, b.Address)
	}
	if err := dial(a.NetNS, serve(t, b.NetNS, "10.200.3.8")); err != nil {
		t.Errorf("task A could not reach task B over the bridge: %v", err)
	}
	if err := dial(b.NetNS, serve(t, a.NetNS, "10.200.3.7")); err != nil {
		t.Errorf("task B could not reach task A over the bridge: %v", err)
	}
	if err := dial(a.NetNS, serve(t, n.hostNS, "10.200.3.1")); err != nil {
		t.Errorf("task A could not reach the gateway: %v", err)
	}
	checkPlumbing(t, n, a)
}

// checkPlumbing asserts both ends of a task's veth are as Attach promises.
func checkPlumbing(t *testing.T, n *testNode, a Attachment) {
	t.Helper()
	h := n.hostHandle(t)
	br, err := h.LinkByName(DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	host, err := h.LinkByName(vethName(a.TaskID))
	if err != nil {
		t.Fatalf("host end of task %s's veth: %v", a.TaskID, err)
	}
	if host.Attrs().MasterIndex != br.Attrs().Index || host.Attrs().MTU != DefaultMTU || host.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("host veth %s: master %d MTU %d flags %v, want on the bridge (%d), MTU %d, up",
			host.Attrs().Name, host.Attrs().MasterIndex, host.Attrs().MTU, host.Attrs().Flags, br.Attrs().Index, DefaultMTU)
	}
	if v6, _ := h.AddrList(host, netlink.FAMILY_V6); len(v6) != 0 {
		t.Errorf("host veth has IPv6 addresses %v, want none", v6)
	}
	th, err := handleAt(a.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	eth, err := th.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 in task %s's namespace: %v", a.TaskID, err)
	}
	if eth.Attrs().MTU != DefaultMTU || eth.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("eth0: MTU %d flags %v, want MTU %d and up", eth.Attrs().MTU, eth.Attrs().Flags, DefaultMTU)
	}
	addrs, err := th.AddrList(eth, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != a.Address.String() {
		t.Errorf("eth0 addresses %v (%v), want just %s", addrs, err, a.Address)
	}
	routes, err := th.RouteList(eth, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
		return (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "10.200.3.1"
	}) {
		t.Errorf("routes in the task namespace %v: want a default route via 10.200.3.1", routes)
	}
}

// TestAttachAgainChangesNothing is what a warren restart does: it must
// keep the namespace and the veth a container already uses.
func TestAttachAgainChangesNothing(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "10.200.3.1/24")
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	id := "task-" + randHex(3)
	first := n.attach(t, id, "10.200.3.9")
	ino := inode(t, first.NetNS)
	hostIdx := linkIndex(t, n.hostHandle(t), vethName(id))
	again := n.attach(t, id, "10.200.3.9")
	if again != first {
		t.Errorf("second Attach returned %+v, want %+v", again, first)
	}
	if got := inode(t, again.NetNS); got != ino {
		t.Errorf("namespace inode %d after a second Attach, want %d: the namespace was recreated", got, ino)
	}
	if got := linkIndex(t, n.hostHandle(t), vethName(id)); got != hostIdx {
		t.Errorf("veth index %d after a second Attach, want %d: the veth was recreated", got, hostIdx)
	}
	checkPlumbing(t, n, again)
}

// TestAttachRepairsAfterBridgeRecreated: a bridge deleted under running
// tasks and made again by Ensure gets their veths back on the next Attach,
// in the same namespaces.
func TestAttachRepairsAfterBridgeRecreated(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "10.200.3.1/24")
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	a := n.attach(t, "task-"+randHex(3), "10.200.3.10")
	ino := inode(t, a.NetNS)
	run(t, "ip", "-n", n.nsName, "link", "del", DefaultName)
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	a = n.attach(t, a.TaskID, "10.200.3.10")
	if got := inode(t, a.NetNS); got != ino {
		t.Errorf("namespace inode %d, want %d: the namespace was recreated", got, ino)
	}
	if err := dial(a.NetNS, serve(t, n.hostNS, "10.200.3.1")); err != nil {
		t.Errorf("task could not reach the gateway on the new bridge: %v", err)
	}
}

func TestAttachReplacesStaleFile(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "10.200.3.1/24")
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	id := "task-" + randHex(3)
	// What a reboot leaves: the file, with no namespace mounted on it.
	stale := filepath.Join(n.cfg.Dir, id)
	if err := os.MkdirAll(n.cfg.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	a := n.attach(t, id, "10.200.3.11")
	if ok, err := isNetNS(a.NetNS); err != nil || !ok {
		t.Fatalf("%s after Attach: a namespace = %v (%v), want a mounted namespace", a.NetNS, ok, err)
	}
	if err := dial(a.NetNS, serve(t, n.hostNS, "10.200.3.1")); err != nil {
		t.Errorf("task in the replaced namespace could not reach the gateway: %v", err)
	}
}

func TestAttachWithoutBridgeLeavesNothing(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "10.200.3.1/24")
	_, err := n.Attach(t.Context(), AttachOptions{TaskID: "task-x", Address: netip.MustParseAddr("10.200.3.12")})
	if err == nil || !strings.Contains(err.Error(), "Ensure") {
		t.Fatalf("Attach before Ensure: got %v, want an error pointing at Ensure", err)
	}
	if ids, err := n.Attached(); err != nil || len(ids) != 0 {
		t.Fatalf("Attached after a failed Attach = %v (%v), want nothing left", ids, err)
	}
}

func TestDetach(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "10.200.3.1/24")
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		id := fmt.Sprintf("task-%d-%s", i, randHex(3))
		n.attach(t, id, fmt.Sprintf("10.200.3.%d", 20+i))
		ids = append(ids, id)
	}
	checkAttached(t, n, ids)
	gone := ids[1]
	if err := n.Detach(gone); err != nil {
		t.Fatal(err)
	}
	if _, err := n.hostHandle(t).LinkByName(vethName(gone)); !isNotFound(err) {
		t.Errorf("veth of a detached task: lookup gave %v, want not found", err)
	}
	for _, p := range []string{filepath.Join(n.cfg.Dir, gone), filepath.Join(n.cfg.Dir, gone+".d")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s after Detach: %v, want it gone", p, err)
		}
	}
	checkAttached(t, n, []string{ids[0], ids[2]})
	if err := n.Detach(gone); err != nil {
		t.Errorf("second Detach: %v, want success", err)
	}
	if err := n.Detach("never-attached"); err != nil {
		t.Errorf("Detach of an unknown task: %v, want success", err)
	}
}

func checkAttached(t *testing.T, n *testNode, want []string) {
	t.Helper()
	got, err := n.Attached()
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("Attached = %v, want %v", got, want)
	}
}

func linkIndex(t *testing.T, h *netlink.Handle, name string) int {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index
}
