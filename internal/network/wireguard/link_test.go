package wireguard

import (
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/internal/testutil"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// node is one side of a two-node tunnel test.
type node struct {
	ns       string
	key      wgtypes.Key
	underlay netip.Addr   // its veth address
	block    netip.Prefix // its /24
	h        *helper
}

func (n *node) peer(blocks ...string) Peer {
	p := Peer{PublicKey: n.key.PublicKey(), Endpoint: netip.AddrPortFrom(n.underlay, DefaultPort)}
	for _, b := range blocks {
		p.AllowedIPs = append(p.AllowedIPs, netip.MustParsePrefix(b))
	}
	return p
}

// twoNodes makes two namespaces joined by a veth pair, with a userspace
// link in each; ns a first gets a leftover TUN under the link's name,
// which Open must replace.
func twoNodes(t *testing.T) (a, b *node) {
	s := randomSuffix(t)
	a = &node{ns: newNetns(t, "wgt-"+s+"-a"), underlay: netip.MustParseAddr("10.99.7.1"), block: netip.MustParsePrefix("10.200.1.0/24")}
	b = &node{ns: newNetns(t, "wgt-"+s+"-b"), underlay: netip.MustParseAddr("10.99.7.2"), block: netip.MustParsePrefix("10.200.2.0/24")}
	run(t, "ip", "link", "add", "wgva"+s, "netns", a.ns, "type", "veth", "peer", "name", "wgvb"+s, "netns", b.ns)
	for _, n := range []struct {
		node *node
		dev  string
	}{{a, "wgva" + s}, {b, "wgvb" + s}} {
		run(t, "ip", "-n", n.node.ns, "addr", "add", n.node.underlay.String()+"/24", "dev", n.dev)
		run(t, "ip", "-n", n.node.ns, "link", "set", n.dev, "up")
	}
	run(t, "ip", "-n", a.ns, "tuntap", "add", "dev", DefaultName, "mode", "tun")
	for _, n := range []*node{a, b} {
		var err error
		if n.key, err = GenerateKey(); err != nil {
			t.Fatal(err)
		}
		gw := netip.PrefixFrom(n.block.Addr().Next(), 32)
		n.h, err = startHelper(t, n.ns, helperConfig{PrivateKey: n.key, Address: gw, Mode: ModeUserspace})
		if err != nil {
			t.Fatalf("open link in %s: %v", n.ns, err)
		}
		if n.h.mode != ModeUserspace {
			t.Fatalf("link in %s opened in mode %v, want userspace", n.ns, n.h.mode)
		}
	}
	return a, b
}

func TestTunnel(t *testing.T) {
	testutil.RequireRoot(t, "ip")
	a, b := twoNodes(t)
	a.h.do(helperCmd{Op: "set", Peers: []Peer{b.peer("10.200.2.0/24")}})
	b.h.do(helperCmd{Op: "set", Peers: []Peer{a.peer("10.200.1.0/24")}})
	checkRoutes(t, a.h, "10.200.2.0/24")
	checkRoutes(t, b.h, "10.200.1.0/24")

	port := b.h.do(helperCmd{Op: "listen"}).Port
	target := netip.AddrPortFrom(netip.MustParseAddr("10.200.2.1"), uint16(port)).String()
	echo(t, a.h, target)
	first := onlyPeer(t, a.h, b)
	if first.LastHandshake.IsZero() || first.RxBytes == 0 || first.TxBytes == 0 {
		t.Fatalf("after traffic, peer status %+v: want a handshake and bytes both ways", first)
	}
	if got := onlyPeer(t, b.h, a); got.LastHandshake.IsZero() || got.RxBytes == 0 {
		t.Fatalf("far side's peer status %+v: want a handshake and bytes received", got)
	}

	t.Run("same set is a no-op", func(t *testing.T) {
		a.h.do(helperCmd{Op: "set", Peers: []Peer{b.peer("10.200.2.0/24")}})
		checkSession(t, onlyPeer(t, a.h, b), first)
		checkRoutes(t, a.h, "10.200.2.0/24")
	})
	t.Run("changed allowed IPs keep the session", func(t *testing.T) {
		a.h.do(helperCmd{Op: "set", Peers: []Peer{b.peer("10.200.22.0/24", "10.200.2.0/24")}})
		got := onlyPeer(t, a.h, b)
		checkSession(t, got, first)
		want := []netip.Prefix{netip.MustParsePrefix("10.200.2.0/24"), netip.MustParsePrefix("10.200.22.0/24")}
		if !slices.Equal(got.AllowedIPs, want) {
			t.Errorf("allowed IPs %v, want %v", got.AllowedIPs, want)
		}
		checkRoutes(t, a.h, "10.200.2.0/24", "10.200.22.0/24")
		echo(t, a.h, target)
	})
	t.Run("empty set removes peer and routes", func(t *testing.T) {
		a.h.do(helperCmd{Op: "set"})
		if peers := a.h.do(helperCmd{Op: "peers"}).Peers; len(peers) != 0 {
			t.Errorf("peers after SetPeers(nil): %+v", peers)
		}
		checkRoutes(t, a.h)
	})
	t.Run("close removes the interface", func(t *testing.T) {
		a.h.do(helperCmd{Op: "close"})
		testutil.WaitFor(t, 5*time.Second, DefaultName+" gone from "+a.ns+" after Close", func() bool {
			return exec.Command("ip", "-n", a.ns, "link", "show", DefaultName).Run() != nil
		})
	})
}

// echo waits until a round trip through the tunnel to target works; the
// first one waits for the handshake. Both sides initiate at once here (as
// nodes do when one joins): each answers the other's initiation, drops
// the answer to its own, and the handshake completes only on a retry 5 s
// later; now and then wireguard-go even keeps a session only one side has
// and heals after 15 s more. Hence the long deadline.
func echo(t *testing.T, h *helper, target string) {
	t.Helper()
	var last error
	testutil.WaitFor(t, 45*time.Second, "echo through the tunnel to "+target+" (dial errors logged above)", func() bool {
		_, last = h.try(helperCmd{Op: "dial", Addr: target})
		if last != nil {
			t.Logf("dial %s: %v", target, last)
		}
		return last == nil
	})
}

// onlyPeer returns h's single peer, which must be want.
func onlyPeer(t *testing.T, h *helper, want *node) PeerStatus {
	t.Helper()
	peers := h.do(helperCmd{Op: "peers"}).Peers
	if len(peers) != 1 || peers[0].PublicKey != want.key.PublicKey() {
		t.Fatalf("peers in %s: %+v, want just %s", h.ns, peers, want.key.PublicKey())
	}
	if ep := netip.AddrPortFrom(want.underlay, DefaultPort); peers[0].Endpoint != ep {
		t.Errorf("peer endpoint %s, want %s", peers[0].Endpoint, ep)
	}
	return peers[0]
}

// checkSession fails unless got is the same session as before: a peer
// removed and added again would start with no handshake and no bytes.
func checkSession(t *testing.T, got, before PeerStatus) {
	t.Helper()
	if !got.LastHandshake.Equal(before.LastHandshake) || got.RxBytes < before.RxBytes || got.TxBytes < before.TxBytes {
		t.Errorf("session was reset: before %+v, now %+v", before, got)
	}
}

// checkRoutes fails unless the routes through h's link are exactly ours
// to want, one each.
func checkRoutes(t *testing.T, h *helper, want ...string) {
	t.Helper()
	got := h.do(helperCmd{Op: "routes"}).Routes
	var wantRoutes []string
	for _, w := range want {
		wantRoutes = append(wantRoutes, w+" proto 87")
	}
	slices.Sort(got)
	if !slices.Equal(got, wantRoutes) {
		t.Errorf("routes via %s in %s: %q, want %q", DefaultName, h.ns, got, wantRoutes)
	}
}

func TestOpenErrors(t *testing.T) {
	testutil.RequireRoot(t, "ip")
	ns := newNetns(t, "wgt-"+randomSuffix(t))
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := helperConfig{PrivateKey: key, Address: netip.MustParsePrefix("10.200.9.1/32"), Mode: ModeUserspace}
	if _, err := startHelper(t, ns, cfg); err != nil {
		t.Fatalf("open first link: %v", err)
	}

	t.Run("port taken", func(t *testing.T) {
		cfg := cfg
		cfg.Name = "warren-wg2"
		_, err := startHelper(t, ns, cfg)
		if err == nil || !strings.Contains(err.Error(), "port") {
			t.Fatalf("second link on the same port: err %v, want one about the port", err)
		}
		// The failed Open must not leave its TUN behind.
		if exec.Command("ip", "-n", ns, "link", "show", cfg.Name).Run() == nil {
			t.Errorf("%s left behind after a failed Open", cfg.Name)
		}
	})
	t.Run("name taken by another kind", func(t *testing.T) {
		run(t, "ip", "-n", ns, "link", "add", "warren-wg3", "type", "veth", "peer", "name", "wgt-veth3")
		cfg := cfg
		cfg.Name, cfg.ListenPort = "warren-wg3", 51823
		_, err := startHelper(t, ns, cfg)
		if err == nil || !strings.Contains(err.Error(), "not WireGuard") {
			t.Fatalf("open over a veth: err %v, want a refusal", err)
		}
	})
}

// TestKernelMode checks the kernel path where this kernel allows: with no
// WireGuard module (as on the test machines) ModeKernel must fail saying
// so, and ModeAuto must fall back to userspace.
func TestKernelMode(t *testing.T) {
	testutil.RequireRoot(t, "ip")
	ns := newNetns(t, "wgt-"+randomSuffix(t))
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := helperConfig{PrivateKey: key, Address: netip.MustParsePrefix("10.200.9.1/32"), Mode: ModeKernel}
	h, err := startHelper(t, ns, cfg)
	kernelOK := err == nil
	switch {
	case kernelOK && h.mode != ModeKernel:
		t.Fatalf("ModeKernel opened in mode %v", h.mode)
	case kernelOK:
		h.do(helperCmd{Op: "close"})
	case !strings.Contains(err.Error(), "userspace mode"):
		t.Fatalf("ModeKernel failed without saying the kernel lacks WireGuard: %v", err)
	}

	cfg.Mode, cfg.Name = ModeAuto, "warren-wg-auto"
	h, err = startHelper(t, ns, cfg)
	if err != nil {
		t.Fatalf("ModeAuto: %v", err)
	}
	want := map[bool]Mode{true: ModeKernel, false: ModeUserspace}[kernelOK]
	if h.mode != want {
		t.Fatalf("ModeAuto chose %v, want %v", h.mode, want)
	}
}
