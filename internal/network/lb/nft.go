package lb

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// ifNameSize is the kernel's IFNAMSIZ: interface names are compared as 16
// zero-padded bytes.
const ifNameSize = 16

// writer queues one Ruleset on a netlink batch.
type writer struct {
	conn   *nftables.Conn
	table  *nftables.Table
	chains map[string]*nftables.Chain
	maps   map[string]*nftables.Set
	setID  uint32 // IDs of the batch's sets; ours, not the library's global counter
}

// writeRuleset replaces the table rs.Table with rs in one transaction. The
// add-table first makes the delete valid when the table does not exist yet
// (the idiom of `nft -f` scripts); if any message fails the kernel applies
// none, and the old table stays.
func writeRuleset(conn *nftables.Conn, rs Ruleset) error {
	w := &writer{
		conn:   conn,
		table:  &nftables.Table{Name: rs.Table, Family: nftables.TableFamilyIPv4},
		chains: map[string]*nftables.Chain{},
		maps:   map[string]*nftables.Set{},
	}
	conn.AddTable(w.table)
	conn.DelTable(w.table)
	conn.AddTable(w.table)
	// Chains first: map elements and rules name them.
	for _, c := range rs.Chains {
		w.addChain(c)
	}
	for _, m := range rs.Maps {
		if err := w.addMap(m); err != nil {
			return err
		}
	}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			if err := w.addRule(w.chains[c.Name], r); err != nil {
				return fmt.Errorf("chain %s, rule %q: %w", c.Name, r, err)
			}
		}
	}
	return conn.Flush()
}

// deleteTable deletes table name, and succeeds if there is none.
func deleteTable(conn *nftables.Conn, name string) error {
	t := &nftables.Table{Name: name, Family: nftables.TableFamilyIPv4}
	conn.AddTable(t)
	conn.DelTable(t)
	return conn.Flush()
}

func (w *writer) addChain(c Chain) {
	nc := &nftables.Chain{Name: c.Name, Table: w.table}
	if h := c.Hook; h != nil {
		nc.Type = nftables.ChainType(h.Type)
		nc.Hooknum = hookNum(h.Hook)
		nc.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(h.Priority))
		accept := nftables.ChainPolicyAccept
		nc.Policy = &accept
	}
	w.chains[c.Name] = w.conn.AddChain(nc)
}

func hookNum(name string) *nftables.ChainHook {
	switch name {
	case "prerouting":
		return nftables.ChainHookPrerouting
	case "output":
		return nftables.ChainHookOutput
	case "postrouting":
		return nftables.ChainHookPostrouting
	case "input":
		return nftables.ChainHookInput
	}
	panic("lb: unknown hook " + name) // Plan names only the four above
}

func (w *writer) addMap(m Map) error {
	s := &nftables.Set{
		Table:    w.table,
		ID:       w.nextSetID(),
		Name:     m.Name,
		IsMap:    true,
		KeyType:  nftables.TypeIPAddr,
		DataType: nftables.TypeVerdict,
	}
	if m.Key == "inet_service" {
		s.KeyType = nftables.TypeInetService
	}
	elems := make([]nftables.SetElement, len(m.Elements))
	for i, e := range m.Elements {
		key := e.Addr.AsSlice()
		if !e.Addr.IsValid() {
			key = be16(e.Port)
		}
		elems[i] = nftables.SetElement{
			Key:         key,
			VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: e.Goto},
			Comment:     e.Comment,
		}
	}
	if err := w.conn.AddSet(s, elems); err != nil {
		return fmt.Errorf("map %s: %w", m.Name, err)
	}
	w.maps[m.Name] = s
	return nil
}

func (w *writer) nextSetID() uint32 {
	w.setID++
	return w.setID
}

func (w *writer) addRule(c *nftables.Chain, r Rule) error {
	var exprs []expr.Any
	for _, m := range r.Match {
		exprs = append(exprs, matchExprs(m)...)
	}
	act, err := w.actionExprs(r.Action)
	if err != nil {
		return err
	}
	nr := &nftables.Rule{Table: w.table, Chain: c, Exprs: append(exprs, act...)}
	if r.Comment != "" {
		nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
	}
	w.conn.AddRule(nr)
	return nil
}
