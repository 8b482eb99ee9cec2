package lb

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serveUDP answers each datagram on port in h's namespace with name.
func serveUDP(t *testing.T, h host, name string, port int) {
	t.Helper()
	var pc net.PacketConn
	var err error
	inNS(t, h.ns, func() { pc, err = net.ListenPacket("udp4", ":"+strconv.Itoa(port)) })
	if err != nil {
		t.Fatalf("listen on udp %d in %s: %v", port, h.ns, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name), from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
}

// askUDP sends one datagram to target from ns and returns the answer.
func askUDP(t *testing.T, ns, target string) string {
	t.Helper()
	var c net.Conn
	var err error
	inNS(t, ns, func() { c, err = net.Dial("udp4", target) })
	if err != nil {
		t.Fatalf("dial udp %s from %s: %v", target, ns, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("?")); err != nil {
		t.Fatalf("send to udp %s from %s: %v", target, ns, err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no answer from udp %s to %s: %v", target, ns, err)
	}
	return strings.TrimSpace(string(buf[:n]))
}

// UDP goes through the VIP (any protocol, same port) and a published port
// (with translation) like TCP.
func TestUDPThroughVIPAndPublishedPort(t *testing.T) {
	tp := newTopo(t, 2, true)
	cli, b1 := tp.ctrs[0], tp.ctrs[1]
	serveUDP(t, b1, "b1", 53)
	l := tp.newLB()
	svc := vipService(map[host]uint32{b1: 1})
	svc.Ports = []Port{{Protocol: UDP, Target: 53, Published: 5353}}
	tp.sync(l, svc)
	if got := askUDP(t, cli.ns, vip+":53"); got != "b1" {
		t.Errorf("udp to the VIP answered %q, want b1", got)
	}
	if got := askUDP(t, tp.ext.ns, tp.nodeExt.String()+":5353"); got != "b1" {
		t.Errorf("udp to published 5353 answered %q, want b1", got)
	}
}

// A UDP client that keeps its source port follows a backend change at
// once: the flow's conntrack entry to the removed backend is flushed.
func TestUDPFlowFollowsBackendChange(t *testing.T) {
	tp := newTopo(t, 3, true)
	cli, b1, b2 := tp.ctrs[0], tp.ctrs[1], tp.ctrs[2]
	serveUDP(t, b1, "b1", 53)
	serveUDP(t, b2, "b2", 53)
	l := tp.newLB()
	tp.sync(l, vipService(map[host]uint32{b1: 1}))

	var c net.Conn
	var err error
	inNS(t, cli.ns, func() { c, err = net.Dial("udp4", vip+":53") })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func() string {
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("?")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer through the VIP: %v", err)
		}
		return string(buf[:n])
	}
	if got := ask(); got != "b1" {
		t.Fatalf("first datagram answered by %q, want b1", got)
	}
	tp.sync(l, vipService(map[host]uint32{b2: 1}))
	if got := ask(); got != "b2" {
		t.Fatalf("after b1 left, the same flow answered by %q, want b2", got)
	}
}
