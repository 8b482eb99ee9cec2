package lb

import (
	"testing"

	"github.com/google/nftables"
)

// A forward chain of another table with policy drop (as Docker leaves
// iptables' FORWARD) is found; one that accepts is not.
func TestForwardDropsFound(t *testing.T) {
	tp := newTopo(t, 0, false)
	var found []string
	var err error
	inNS(t, tp.node, func() {
		conn, cerr := nftables.New()
		if cerr != nil {
			err = cerr
			return
		}
		drop, accept := nftables.ChainPolicyDrop, nftables.ChainPolicyAccept
		filter := conn.AddTable(&nftables.Table{Name: "filter", Family: nftables.TableFamilyIPv4})
		conn.AddChain(&nftables.Chain{Name: "FORWARD", Table: filter, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop})
		other := conn.AddTable(&nftables.Table{Name: "other", Family: nftables.TableFamilyIPv4})
		conn.AddChain(&nftables.Chain{Name: "fwd", Table: other, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
		if err = conn.Flush(); err != nil {
			return
		}
		found, err = forwardDrops(conn, "warren")
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0] != "table filter chain FORWARD" {
		t.Fatalf("forward drops: %v, want the filter table's FORWARD only", found)
	}
}
