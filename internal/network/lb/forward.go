package lb

import (
	"fmt"

	"github.com/google/nftables"
)

// forwardDrops names the forward-hook chains of other tables whose policy
// is drop (Docker sets one on iptables' FORWARD). A drop there is final,
// whatever our table accepts: overlay traffic routed or bridged through
// this node would vanish without a trace, so the operator must be told.
func forwardDrops(conn *nftables.Conn, ours string) ([]string, error) {
	chains, err := conn.ListChains()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range chains {
		if c.Table == nil || c.Table.Name == ours || c.Hooknum == nil || c.Policy == nil {
			continue
		}
		if *c.Hooknum == *nftables.ChainHookForward && *c.Policy == nftables.ChainPolicyDrop {
			out = append(out, fmt.Sprintf("table %s chain %s", c.Table.Name, c.Name))
		}
	}
	return out, nil
}

// warnForwardDrops tells, once per LB, about chains that would drop the
// overlay's forwarded traffic, with the rules that let it through.
func (l *LB) warnForwardDrops(conn *nftables.Conn) {
	if l.forwardChecked {
		return
	}
	l.forwardChecked = true
	drops, err := forwardDrops(conn, l.cfg.Table)
	if err != nil || len(drops) == 0 {
		return
	}
	l.log.Warn("a forward chain with policy drop will drop overlay traffic between nodes and containers; let it through, e.g. "+
		fmt.Sprintf("iptables -I FORWARD -i %[1]s -j ACCEPT; iptables -I FORWARD -o %[1]s -j ACCEPT; iptables -I FORWARD -i %[2]s -j ACCEPT; iptables -I FORWARD -o %[2]s -j ACCEPT",
			l.cfg.Bridge, l.cfg.WireGuard), "lb.chains", drops)
}
