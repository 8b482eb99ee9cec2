package overlay

import (
	"net/netip"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/network/lb"
)

func testKey(t *testing.T) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}

// The map becomes peers (every other node, its block as allowed IPs; a
// malformed entry skipped with a reason), rules and DNS records (local
// backends marked, host-mode ports kept as such).
func TestConvertMap(t *testing.T) {
	kb, kc := testKey(t), testKey(t)
	m := &api.NetworkMap{
		Nodes: []*api.MeshNode{
			{NodeId: "a", Block: "10.200.0.0/24", WireguardPublicKey: testKey(t).String(), WireguardEndpoint: "192.0.2.1:51820"},
			{NodeId: "b", Block: "10.200.1.0/24", WireguardPublicKey: kb.String(), WireguardEndpoint: "192.0.2.2:51820"},
			{NodeId: "c", Block: "10.200.2.0/24", WireguardPublicKey: kc.String(), WireguardEndpoint: "not an endpoint"},
		},
		Services: []*api.ServiceEndpoints{{
			ServiceId: "s1", Name: "web", Vip: "10.201.0.1",
			Ports: []*api.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080}, {Protocol: "udp", TargetPort: 53, PublishedPort: 53, PublishMode: api.PublishMode_PUBLISH_MODE_HOST}},
			Backends: []*api.Backend{
				{TaskId: "t1", NodeId: "a", Address: "10.200.0.2", Weight: 1},
				{TaskId: "t2", NodeId: "b", Address: "10.200.1.2", Weight: 9},
			},
		}},
	}
	ps, skipped := peers(m, "a")
	if len(ps) != 1 || ps[0].PublicKey != kb || ps[0].Endpoint.String() != "192.0.2.2:51820" || ps[0].AllowedIPs[0].String() != "10.200.1.0/24" {
		t.Fatalf("peers of a: %+v", ps)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "node c: endpoint") {
		t.Fatalf("skipped: %v", skipped)
	}
	rules, names := services(m, "a")
	want := lb.Service{ID: "s1", Name: "web", VIP: netip.MustParseAddr("10.201.0.1"),
		Ports:    []lb.Port{{Protocol: lb.TCP, Target: 80, Published: 8080, Mode: lb.Ingress}, {Protocol: lb.UDP, Target: 53, Published: 53, Mode: lb.Host}},
		Backends: []lb.Backend{{Addr: netip.MustParseAddr("10.200.0.2"), Weight: 1, Local: true}, {Addr: netip.MustParseAddr("10.200.1.2"), Weight: 9}},
	}
	if len(rules) != 1 || rules[0].Name != want.Name || rules[0].VIP != want.VIP || len(rules[0].Ports) != 2 || rules[0].Ports[1] != want.Ports[1] ||
		rules[0].Backends[0] != want.Backends[0] || rules[0].Backends[1] != want.Backends[1] {
		t.Fatalf("rules: %+v\nwant %+v", rules, want)
	}
	if len(names) != 1 || names[0].Name != "web" || len(names[0].Tasks) != 2 {
		t.Fatalf("DNS records: %+v", names)
	}
}
