package lb

import (
	"fmt"
	"slices"
	"testing"
)

// A port published in ingress mode answers on the node's addresses, with
// port translation, and reaches a local backend and one behind the mesh:
//   - an external client keeps its address at the local backend, and is
//     masqueraded towards the remote one (which must reply through us);
//   - a container keeps its address at the remote backend (replies come
//     back through the mesh), and is masqueraded at the local one (hairpin);
//   - 127.0.0.1 on the node works, masqueraded.
func TestIngressPortReachesLocalAndRemoteBackends(t *testing.T) {
	bridgeModes(t, testIngressPort)
}

func testIngressPort(t *testing.T, brNetfilter bool) {
	tp := newTopo(t, 2, brNetfilter)
	cli, local := tp.ctrs[0], tp.ctrs[1]
	serve(t, local, "local", 80)
	serve(t, tp.remote, "remote", 80)
	l := tp.newLB()
	tp.sync(l, publishService(local, tp.remote, Ingress, 8080))

	gw := tp.gw.String()
	for _, c := range []struct {
		name, ns, target   string
		fromLocal, fromRem string // the client address each backend should see
	}{
		{"external client", tp.ext.ns, tp.nodeExt.String() + ":8080", tp.ext.addr.String(), gw},
		{"container to the gateway", cli.ns, gw + ":8080", gw, cli.addr.String()},
		{"node on localhost", tp.node, "127.0.0.1:8080", gw, gw},
		{"node on its external address", tp.node, tp.nodeExt.String() + ":8080", tp.nodeExt.String(), gw},
	} {
		count, from := spread(t, c.ns, c.target, 60)
		if count["local"] == 0 || count["remote"] == 0 {
			t.Errorf("%s: 60 connections to %s reached %v, want the local and the remote backend", c.name, c.target, count)
		}
		if want := []string{c.fromLocal}; count["local"] > 0 && !slices.Equal(from["local"], want) {
			t.Errorf("%s: the local backend saw clients %v, want %v", c.name, from["local"], want)
		}
		if want := []string{c.fromRem}; count["remote"] > 0 && !slices.Equal(from["remote"], want) {
			t.Errorf("%s: the remote backend saw clients %v, want %v", c.name, from["remote"], want)
		}
	}
}

// A port published in host mode reaches only this node's tasks, and is not
// published at all on a node without one.
func TestHostModePortOnlyLocalBackends(t *testing.T) {
	tp := newTopo(t, 1, true)
	local := tp.ctrs[0]
	serve(t, local, "local", 80)
	serve(t, tp.remote, "remote", 80)
	l := tp.newLB()
	svc := publishService(local, tp.remote, Host, 9090)
	tp.sync(l, svc)
	target := tp.nodeExt.String() + ":9090"
	if count, _ := spread(t, tp.ext.ns, target, 40); count["local"] != 40 {
		t.Errorf("40 connections to host-mode %s reached %v, want the local backend only", target, count)
	}

	svc.Backends = svc.Backends[1:] // only the remote task is left
	tp.sync(l, svc)
	if _, _, g, err := open(t, tp.ext.ns, target); err == nil {
		t.Errorf("host-mode port without a local task reached %q; want nothing listening here", g.backend)
	}
}

func publishService(local, remote host, mode PublishMode, published uint16) Service {
	return Service{
		ID: fmt.Sprintf("pub%d", published), Name: fmt.Sprintf("pub%d", published),
		Ports: []Port{{Protocol: TCP, Target: 80, Published: published, Mode: mode}},
		Backends: []Backend{
			{Addr: local.addr, Local: true},
			{Addr: remote.addr},
		},
	}
}
