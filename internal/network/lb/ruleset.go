package lb

import (
	"fmt"
	"net/netip"
	"strings"
)

// Ruleset is the table Sync writes, in a form tests and operators can read.
// String renders it in nft's syntax, close to what `nft list table ip
// warren` prints.
type Ruleset struct {
	Table  string
	Maps   []Map
	Chains []Chain
	// Skipped says which services or ports were left out, and why (a
	// duplicate VIP or published port, an IPv6 address...). Sync logs them.
	Skipped []string
}

// Chain is a list of rules, tried in order.
type Chain struct {
	Name  string
	Hook  *Hook // nil: a regular chain, entered only by jump, goto or vmap
	Rules []Rule
}

// Hook attaches a base chain to a netfilter hook.
type Hook struct {
	Type     string // "nat" or "filter"
	Hook     string // "prerouting", "output", "postrouting", "input"
	Priority int    // -100 dstnat, 0 filter, 100 srcnat
}

// Rule is a conjunction of matches and one action.
type Rule struct {
	Match   []Match
	Action  Action
	Comment string
}

// Map is a named verdict map: a key found in it sends the packet to a chain.
type Map struct {
	Name     string
	Key      string // "ipv4_addr" (keys are Addr) or "inet_service" (keys are Port)
	Elements []MapElement
}

// MapElement sends packets with one key to a chain (goto: the chain's end
// returns to the caller of the chain holding the lookup).
type MapElement struct {
	Addr    netip.Addr
	Port    uint16
	Goto    string
	Comment string
}

func (rs Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", rs.Table)
	for _, m := range rs.Maps {
		fmt.Fprintf(&b, "\tmap %s {\n\t\ttype %s : verdict\n", m.Name, m.Key)
		for _, e := range m.Elements {
			fmt.Fprintf(&b, "\t\t%s\n", e)
		}
		b.WriteString("\t}\n")
	}
	for _, c := range rs.Chains {
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		if h := c.Hook; h != nil {
			fmt.Fprintf(&b, "\t\ttype %s hook %s priority %d; policy accept;\n", h.Type, h.Hook, h.Priority)
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// Chain returns the chain named name, and whether there is one.
func (rs Ruleset) Chain(name string) (Chain, bool) {
	for _, c := range rs.Chains {
		if c.Name == name {
			return c, true
		}
	}
	return Chain{}, false
}

// Map returns the map named name, and whether there is one.
func (rs Ruleset) Map(name string) (Map, bool) {
	for _, m := range rs.Maps {
		if m.Name == name {
			return m, true
		}
	}
	return Map{}, false
}

func (r Rule) String() string {
	parts := make([]string, 0, len(r.Match)+2)
	for _, m := range r.Match {
		parts = append(parts, m.String())
	}
	parts = append(parts, r.Action.String())
	if r.Comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", r.Comment))
	}
	return strings.Join(parts, " ")
}

func (e MapElement) String() string {
	key := e.Addr.String()
	if !e.Addr.IsValid() {
		key = fmt.Sprint(e.Port)
	}
	s := fmt.Sprintf("%s : goto %s", key, e.Goto)
	if e.Comment != "" {
		s += fmt.Sprintf(" comment %q", e.Comment)
	}
	return s
}

// Strings returns the chain's rules rendered one per line.
func (c Chain) Strings() []string {
	out := make([]string, len(c.Rules))
	for i, r := range c.Rules {
		out[i] = r.String()
	}
	return out
}
