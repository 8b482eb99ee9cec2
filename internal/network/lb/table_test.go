package lb

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
)

// dump lists every table of the node and, for ours, each chain's rules as
// their expressions, so two dumps are equal only if the kernel holds the
// same rules.
func (tp *topo) dump() (tables []string, rules map[string][]string) {
	tp.t.Helper()
	var err error
	inNS(tp.t, tp.node, func() { tables, rules, err = dumpTables(tp.cfg.Table) })
	if err != nil {
		tp.t.Fatalf("list nftables in %s: %v", tp.node, err)
	}
	return tables, rules
}

func dumpTables(ours string) ([]string, map[string][]string, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, nil, err
	}
	all, err := conn.ListTables()
	if err != nil {
		return nil, nil, err
	}
	var tables []string
	rules := map[string][]string{}
	for _, t := range all {
		tables = append(tables, fmt.Sprintf("%d %s", t.Family, t.Name))
		if t.Name != ours {
			continue
		}
		chains, err := conn.ListChainsOfTableFamily(t.Family)
		if err != nil {
			return nil, nil, err
		}
		for _, c := range chains {
			if c.Table.Name != t.Name {
				continue
			}
			rs, err := conn.GetRules(t, c)
			if err != nil {
				return nil, nil, err
			}
			for _, r := range rs {
				var exprs []string
				for _, e := range r.Exprs {
					exprs = append(exprs, fmt.Sprintf("%T%+v", e, e))
				}
				rules[c.Name] = append(rules[c.Name], strings.Join(exprs, " "))
			}
		}
	}
	slices.Sort(tables)
	return tables, rules, nil
}

// nftList returns `nft list ruleset` in the node, for failure messages, if
// nft is installed (production code does not use it).
func (tp *topo) nftList() string {
	out, err := exec.Command("ip", "netns", "exec", tp.node, "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(nft list ruleset: %v %s)", err, out)
	}
	return string(out)
}

// Syncing the same services twice leaves one table with the same rules;
// Close removes it, and closing again is no error.
func TestSyncIsIdempotentAndCloseRemovesTable(t *testing.T) {
	tp := newTopo(t, 2, true)
	b1, b2 := tp.ctrs[0], tp.ctrs[1]
	l := tp.newLB()
	svc := vipService(map[host]uint32{b1: 1, b2: 3})
	svc.Ports = []Port{{Protocol: TCP, Target: 80, Published: 8080}, {Protocol: UDP, Target: 53, Published: 5353}}
	empty := Service{ID: "emptyid", Name: "empty", VIP: addr("10.201.0.9")}

	tp.sync(l, svc, empty)
	tables1, rules1 := tp.dump()
	tp.sync(l, svc, empty)
	tables2, rules2 := tp.dump()
	if want := []string{fmt.Sprintf("%d %s", nftables.TableFamilyIPv4, tp.cfg.Table)}; !slices.Equal(tables2, want) {
		t.Fatalf("tables after two Syncs: %v, want only ours %v", tables2, want)
	}
	if !slices.Equal(tables1, tables2) {
		t.Errorf("tables changed between identical Syncs: %v then %v", tables1, tables2)
	}
	plan := Plan(tp.cfg, []Service{svc, empty})
	for _, c := range plan.Chains {
		if len(rules2[c.Name]) != len(c.Rules) {
			t.Errorf("chain %s holds %d rules, the plan %d:\n%s", c.Name, len(rules2[c.Name]), len(c.Rules), tp.nftList())
		}
		if !slices.Equal(rules1[c.Name], rules2[c.Name]) {
			t.Errorf("chain %s changed between identical Syncs:\n%q\n%q", c.Name, rules1[c.Name], rules2[c.Name])
		}
	}
	if len(rules2) != len(plan.Chains) { // every chain of a plan has rules
		t.Errorf("kernel has rules in %d chains, the plan %d", len(rules2), len(plan.Chains))
	}

	var err error
	inNS(t, tp.node, func() { err = l.Close() })
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	if tables, _ := tp.dump(); len(tables) != 0 {
		t.Errorf("tables after Close: %v, want none", tables)
	}
	inNS(t, tp.node, func() { err = l.Close() })
	if err != nil {
		t.Errorf("second Close: %v", err)
	}
}
