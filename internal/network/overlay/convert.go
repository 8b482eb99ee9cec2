package overlay

import (
	"fmt"
	"net/netip"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/network/dns"
	"github.com/warren-project/warren/internal/network/lb"
	"github.com/warren-project/warren/internal/network/wireguard"
)

// peers are the other nodes of the mesh as WireGuard peers. Entries that do
// not parse are skipped with a reason: one bad node must not cut off all.
func peers(m *api.NetworkMap, self string) ([]wireguard.Peer, []string) {
	var out []wireguard.Peer
	var skipped []string
	for _, n := range m.GetNodes() {
		if n.GetNodeId() == self {
			continue
		}
		key, err := wgtypes.ParseKey(n.GetWireguardPublicKey())
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("node %s: public key: %v", n.GetNodeId(), err))
			continue
		}
		block, err := netip.ParsePrefix(n.GetBlock())
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("node %s: block: %v", n.GetNodeId(), err))
			continue
		}
		ep, err := netip.ParseAddrPort(n.GetWireguardEndpoint())
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("node %s: endpoint: %v", n.GetNodeId(), err))
			continue
		}
		out = append(out, wireguard.Peer{PublicKey: key, Endpoint: ep, AllowedIPs: []netip.Prefix{block}})
	}
	return out, skipped
}

// services are the map's services as the load balancer and DNS need them.
func services(m *api.NetworkMap, self string) ([]lb.Service, []dns.Service) {
	var rules []lb.Service
	var names []dns.Service
	for _, s := range m.GetServices() {
		vip, _ := netip.ParseAddr(s.GetVip())
		ls := lb.Service{ID: s.GetServiceId(), Name: s.GetName(), VIP: vip}
		ds := dns.Service{Name: s.GetName(), VIP: vip}
		for _, p := range s.GetPorts() {
			mode := lb.Ingress
			if p.GetPublishMode() == api.PublishMode_PUBLISH_MODE_HOST {
				mode = lb.Host
			}
			ls.Ports = append(ls.Ports, lb.Port{Protocol: lb.Protocol(p.GetProtocol()), Target: uint16(p.GetTargetPort()), Published: uint16(p.GetPublishedPort()), Mode: mode})
		}
		for _, b := range s.GetBackends() {
			a, err := netip.ParseAddr(b.GetAddress())
			if err != nil {
				continue
			}
			ls.Backends = append(ls.Backends, lb.Backend{Addr: a, Weight: b.GetWeight(), Local: b.GetNodeId() == self})
			ds.Tasks = append(ds.Tasks, a)
		}
		rules = append(rules, ls)
		names = append(names, ds)
	}
	return rules, names
}

// nodeOfKey maps public keys (as WireGuard reports peers) to node IDs.
func nodeOfKey(m *api.NetworkMap) map[wgtypes.Key]string {
	out := map[wgtypes.Key]string{}
	for _, n := range m.GetNodes() {
		if k, err := wgtypes.ParseKey(n.GetWireguardPublicKey()); err == nil {
			out[k] = n.GetNodeId()
		}
	}
	return out
}
