package bridge

import (
	"net"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestEnsureIsIdempotent(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "10.200.3.1/24")
	h := n.hostHandle(t)
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	first, err := h.LinkByName(DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ensure(); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	checkBridge(t, n, first.Attrs().Index)
	if mac := first.Attrs().HardwareAddr; len(mac) != 6 || mac[0]&0x02 == 0 {
		t.Errorf("bridge MAC %s: want a locally administered one of its own", mac)
	}
}

// TestEnsureRepairs shows Ensure adopting a bridge made by someone else and
// putting back what was changed under it.
func TestEnsureRepairs(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "10.200.3.1/24")
	run(t, "ip", "-n", n.nsName, "link", "add", DefaultName, "type", "bridge")
	for _, a := range []string{
		"10.200.9.1/24", // an old block's gateway
		"10.200.3.5/24", // a stray primary in the block ...
		"10.200.3.1/24", // ... which makes the gateway a secondary that goes when the primary does
		"10.200.3.1/16", // the gateway with the wrong length
	} {
		run(t, "ip", "-n", n.nsName, "addr", "add", a, "dev", DefaultName)
	}
	run(t, "ip", "-n", n.nsName, "link", "set", DefaultName, "mtu", "1300")
	pre, err := n.hostHandle(t).LinkByName(DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	checkBridge(t, n, pre.Attrs().Index)
}

func TestEnsureRefusesForeignLink(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "10.200.3.1/24")
	run(t, "ip", "-n", n.nsName, "link", "add", DefaultName, "type", "veth", "peer", "name", "other0")
	err := n.Ensure()
	if err == nil || !strings.Contains(err.Error(), "not a bridge") {
		t.Fatalf("Ensure over a veth: got %v, want an error saying it is not a bridge", err)
	}
}

// checkBridge asserts that the node has exactly one bridge, the one with
// index idx, configured as Ensure promises.
func checkBridge(t *testing.T, n *testNode, idx int) {
	t.Helper()
	h := n.hostHandle(t)
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var bridges []string
	for _, l := range links {
		if l.Type() == "bridge" {
			bridges = append(bridges, l.Attrs().Name)
		}
	}
	if len(bridges) != 1 || bridges[0] != DefaultName {
		t.Fatalf("bridges in the node namespace: %v, want just %s", bridges, DefaultName)
	}
	br, err := h.LinkByName(DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	if br.Attrs().Index != idx {
		t.Errorf("bridge index %d, want %d: the bridge was recreated, not adopted", br.Attrs().Index, idx)
	}
	if br.Attrs().MTU != DefaultMTU || br.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("bridge MTU %d flags %v, want MTU %d and up", br.Attrs().MTU, br.Attrs().Flags, DefaultMTU)
	}
	addrs, err := h.AddrList(br, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.200.3.1/24" {
		t.Errorf("bridge addresses %v, want only 10.200.3.1/24 (and no IPv6)", addrs)
	}
	if v := readSysctl(t, n.hostNS, "net/ipv4/ip_forward"); v != "1" {
		t.Errorf("ip_forward in the node namespace = %s, want 1", v)
	}
	if v := readSysctl(t, n.hostNS, "net/ipv6/conf/"+DefaultName+"/disable_ipv6"); v != "1" {
		t.Errorf("disable_ipv6 on the bridge = %s, want 1", v)
	}
}
