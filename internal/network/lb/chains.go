package lb

// Netfilter priorities of our base chains: nft's dstnat, srcnat and filter.
const (
	prioDstNAT = -100
	prioSrcNAT = 100
	prioFilter = 0
)

// baseChains returns the chains attached to netfilter hooks, and the
// services chain they share.
func (p *planner) baseChains() []Chain {
	toServices := []Rule{{Action: jump{chainServices}}}
	return []Chain{
		// Containers and the network.
		{Name: chainPrerouting, Hook: &Hook{"nat", "prerouting", prioDstNAT}, Rules: toServices},
		// The node's own processes, localhost published ports included.
		{Name: chainOutput, Hook: &Hook{"nat", "output", prioDstNAT}, Rules: toServices},
		{Name: chainPostrouting, Hook: &Hook{"nat", "postrouting", prioSrcNAT}, Rules: p.masqRules()},
		{Name: chainInput, Hook: &Hook{"filter", "input", prioFilter}, Rules: localnetGuard()},
		{Name: chainServices, Rules: []Rule{
			{Action: vmap{"ip daddr", mapVIPs}},
			{Match: []Match{daddrLocal{}, l4proto{TCP}}, Action: vmap{"th dport", mapTCPPorts}},
			{Match: []Match{daddrLocal{}, l4proto{UDP}}, Action: vmap{"th dport", mapUDPPorts}},
		}},
	}
}

// masqRules returns the source NAT rules. They apply only to connections
// we DNATed, and only where the backend's reply would otherwise not come
// back through this node to be un-DNATed:
//   - hairpin: a container reaching a service that lands on itself or on a
//     neighbour of the same bridge would get the reply straight from the
//     backend (or from itself), not from the VIP. "Came in on the bridge" is
//     told by the source, a task address, not by iifname: with br_netfilter
//     on, a DNATed frame whose backend sits on the same bridge is bridged,
//     not routed, and its postrouting hook has no input interface. (A task
//     of another node reaching this node's address is caught too, harmlessly.)
//   - an external client of a published port whose backend is on another
//     node: that node would reply to the client directly. Sources inside the
//     cluster subnet are routed back through the mesh, so they keep their
//     address (and backends see the real client);
//   - mesh hairpin: a connection from another node to this node's address,
//     sent on to a third node (or back), would be answered by that node
//     directly;
//   - localhost published ports: 127.0.0.1 means nothing on the backend.
//
// An external client whose backend is on this node keeps its source: the
// reply returns through the bridge's gateway, this node.
func (p *planner) masqRules() []Rule {
	natted := ctDNAT{}
	return []Rule{
		{Match: []Match{natted, oifname{p.cfg.Bridge}, saddrIn{Prefix: p.cfg.Subnet}}, Action: masquerade{}, Comment: "hairpin"},
		{Match: []Match{natted, oifname{p.cfg.WireGuard}, saddrIn{Prefix: p.cfg.Subnet, Not: true}}, Action: masquerade{}, Comment: "external client, remote backend"},
		{Match: []Match{natted, iifname{Name: p.cfg.WireGuard}, oifname{p.cfg.WireGuard}}, Action: masquerade{}, Comment: "mesh hairpin"},
		{Match: []Match{natted, saddrIn{Prefix: loopback}}, Action: masquerade{}, Comment: "localhost published port"},
	}
}

// localnetGuard drops packets from the network addressed to 127.0.0.0/8.
// Sync sets route_localnet so that localhost published ports work, and
// that also lets a neighbour on the same link reach services bound to the
// node's loopback (kube-proxy's CVE-2020-8558). Replies of our own
// localhost DNAT arrive on the bridge addressed to 127.0.0.1 once
// un-NATed, and are kept: their connection is DNATed.
func localnetGuard() []Rule {
	return []Rule{{
		Match:   []Match{iifname{Name: "lo", Not: true}, daddrIn{loopback}, ctDNAT{Not: true}},
		Action:  drop{},
		Comment: "route_localnet guard",
	}}
}
