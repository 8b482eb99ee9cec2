package lb

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

const vip = "10.201.0.5"

// vipService is a service whose VIP balances over backends, each given as
// a container (local) with a weight.
func vipService(weights map[host]uint32) Service {
	s := Service{ID: "webid", Name: "web", VIP: addr(vip)}
	for h, w := range weights {
		s.Backends = append(s.Backends, Backend{Addr: h.addr, Weight: w, Local: true})
	}
	return s
}

// Connections to the VIP, from a container and from the node itself, reach
// both backends; a container on the bridge is masqueraded (hairpin), the
// node keeps its bridge address.
func TestVIPReachesEveryBackend(t *testing.T) { bridgeModes(t, testVIPReachesEveryBackend) }

func testVIPReachesEveryBackend(t *testing.T, brNetfilter bool) {
	tp := newTopo(t, 3, brNetfilter)
	cli, b1, b2 := tp.ctrs[0], tp.ctrs[1], tp.ctrs[2]
	serve(t, b1, "b1", 80)
	serve(t, b2, "b2", 80)
	l := tp.newLB()
	tp.sync(l, vipService(map[host]uint32{b1: 1, b2: 1}))

	for _, from := range []string{cli.ns, tp.node} {
		count, seen := spread(t, from, vip+":80", 60)
		if count["b1"] == 0 || count["b2"] == 0 || count["b1"]+count["b2"] != 60 {
			t.Errorf("60 connections from %s reached %v, want both b1 and b2", from, count)
		}
		for b, addrs := range seen {
			if len(addrs) != 1 || addrs[0] != tp.gw.String() {
				t.Errorf("from %s, %s saw clients %v, want %s (hairpin masquerade or the node's bridge address)", from, b, addrs, tp.gw)
			}
		}
	}
	// A backend reaching its own service, landing on itself or its neighbour.
	count, _ := spread(t, b1.ns, vip+":80", 60)
	if count["b1"] == 0 || count["b2"] == 0 {
		t.Errorf("60 connections from b1 to its own VIP reached %v, want both", count)
	}
	for _, sysctl := range []string{"net/ipv4/conf/all/route_localnet", "net/ipv4/ip_forward"} {
		var got []byte
		var err error
		inNS(t, tp.node, func() { got, err = os.ReadFile("/proc/sys/" + sysctl) })
		if err != nil || strings.TrimSpace(string(got)) != "1" {
			t.Errorf("sysctl %s in the node = %q (%v), want 1", sysctl, got, err)
		}
	}
}

// A backend removed by Sync gets no new connection from the moment Sync
// returns, while a connection it already has keeps working (moby#30321).
func TestRemovedBackendKeepsOpenConnectionsOnly(t *testing.T) {
	bridgeModes(t, testRemovedBackendKeepsOpenConnectionsOnly)
}

func testRemovedBackendKeepsOpenConnectionsOnly(t *testing.T, brNetfilter bool) {
	tp := newTopo(t, 3, brNetfilter)
	cli, b1, b2 := tp.ctrs[0], tp.ctrs[1], tp.ctrs[2]
	serve(t, b1, "b1", 80)
	serve(t, b2, "b2", 80)
	l := tp.newLB()
	tp.sync(l, vipService(map[host]uint32{b1: 1, b2: 1}))

	var toB2 net.Conn
	var rB2 *bufio.Reader
	for i := 0; i < 60 && toB2 == nil; i++ {
		c, r, g, err := open(t, cli.ns, vip+":80")
		if err != nil {
			t.Fatal(err)
		}
		if g.backend == "b2" {
			toB2, rB2 = c, r
			continue
		}
		c.Close()
	}
	if toB2 == nil {
		t.Fatal("60 connections to the VIP never reached b2")
	}
	defer toB2.Close()

	tp.sync(l, vipService(map[host]uint32{b1: 1}))
	if count, _ := spread(t, cli.ns, vip+":80", 60); count["b1"] != 60 {
		t.Errorf("after b2 left, 60 new connections reached %v, want b1 only", count)
	}
	if err := echo(toB2, rB2, "still there"); err != nil {
		t.Errorf("the connection open to b2 before it left broke: %v", err)
	}
}

// Weights 1/9 send about 10% of connections to the first backend.
func TestWeightsSplitConnections(t *testing.T) {
	tp := newTopo(t, 2, true)
	b1, b2 := tp.ctrs[0], tp.ctrs[1]
	serve(t, b1, "b1", 80)
	serve(t, b2, "b2", 80)
	l := tp.newLB()
	tp.sync(l, vipService(map[host]uint32{b1: 1, b2: 9}))

	const n = 200
	count, _ := spread(t, tp.node, vip+":80", n)
	// Binomial(200, 0.1): mean 20, sd 4.2; outside [4, 60] is ~1e-5 likely.
	if count["b1"] < n*2/100 || count["b1"] > n*30/100 || count["b1"]+count["b2"] != n {
		t.Errorf("weights 1/9 over %d connections gave %v, want b1 between 2%% and 30%%", n, count)
	}
	t.Logf("weights 1/9: %v", count)
}

// No backend: connections are refused at once, not left to time out.
func TestNoBackendsRefuseAtOnce(t *testing.T) {
	tp := newTopo(t, 1, true)
	l := tp.newLB()
	tp.sync(l, Service{ID: "webid", Name: "web", VIP: addr(vip),
		Ports: []Port{{Protocol: TCP, Target: 80, Published: 8080}}})
	for _, c := range []struct{ ns, target string }{
		{tp.ctrs[0].ns, vip + ":80"},
		{tp.node, vip + ":443"},
		{tp.ext.ns, tp.nodeExt.String() + ":8080"},
	} {
		start := time.Now()
		_, _, _, err := open(t, c.ns, c.target)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connect to %s from %s: %v, want connection refused", c.target, c.ns, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("connect to %s from %s failed after %s, want at once", c.target, c.ns, d)
		}
	}
}

// Traffic between containers of one bridge is left alone: the server sees
// its real client.
func TestBridgedTrafficUnchanged(t *testing.T) { bridgeModes(t, testBridgedTrafficUnchanged) }

func testBridgedTrafficUnchanged(t *testing.T, brNetfilter bool) {
	tp := newTopo(t, 2, brNetfilter)
	cli, b1 := tp.ctrs[0], tp.ctrs[1]
	serve(t, b1, "b1", 80)
	l := tp.newLB()
	tp.sync(l, vipService(map[host]uint32{b1: 1}))
	if g := hello(t, cli.ns, netip.AddrPortFrom(b1.addr, 80).String()); g.from != cli.addr.String() {
		t.Errorf("b1 saw a direct connection from %s, want the client's own %s", g.from, cli.addr)
	}
}
