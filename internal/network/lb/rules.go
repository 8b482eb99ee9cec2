package lb

import (
	"fmt"
	"net/netip"
)

// Match is one condition of a Rule. Its types, below, are unexported:
// outside the package a rule is read through String, in nft's syntax.
// Sync translates each into nftables expressions (exprs.go).
type Match interface {
	fmt.Stringer
	isMatch()
}

// daddrIn matches an IPv4 destination inside Prefix (a /32 for one address).
type daddrIn struct{ Prefix netip.Prefix }

// saddrIn matches an IPv4 source inside Prefix, or outside it with Not.
type saddrIn struct {
	Prefix netip.Prefix
	Not    bool
}

// daddrLocal matches a destination that is an address of this node
// (fib daddr type local), whatever the interface holding it.
type daddrLocal struct{}

// l4proto matches the transport protocol.
type l4proto struct{ Proto Protocol }

// iifname matches the input interface's name, or any other with Not.
type iifname struct {
	Name string
	Not  bool
}

// oifname matches the output interface's name.
type oifname struct{ Name string }

// ctDNAT matches a connection whose destination was translated (ct status
// dnat), or one whose was not with Not.
type ctDNAT struct{ Not bool }

func (daddrIn) isMatch()    {}
func (saddrIn) isMatch()    {}
func (daddrLocal) isMatch() {}
func (l4proto) isMatch()    {}
func (iifname) isMatch()    {}
func (oifname) isMatch()    {}
func (ctDNAT) isMatch()     {}

func (m daddrIn) String() string { return "ip daddr " + prefixString(m.Prefix) }

func (m saddrIn) String() string {
	if m.Not {
		return "ip saddr != " + prefixString(m.Prefix)
	}
	return "ip saddr " + prefixString(m.Prefix)
}

func (daddrLocal) String() string { return "fib daddr type local" }
func (m l4proto) String() string  { return "meta l4proto " + string(m.Proto) }

func (m iifname) String() string {
	if m.Not {
		return fmt.Sprintf("iifname != %q", m.Name)
	}
	return fmt.Sprintf("iifname %q", m.Name)
}

func (m oifname) String() string { return fmt.Sprintf("oifname %q", m.Name) }

func (m ctDNAT) String() string {
	if m.Not {
		return "ct status & dnat == 0"
	}
	return "ct status dnat"
}

// prefixString writes a /32 as a bare address, as nft does.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// Action ends a Rule. Like Match, its types are unexported.
type Action interface {
	fmt.Stringer
	isAction()
}

// jump runs another chain and comes back.
type jump struct{ Chain string }

// vmap looks a key up in a verdict map: Key is "ip daddr" or "th dport".
type vmap struct{ Key, Map string }

// dnat sends the connection to one of Slots, drawn at random with
// probability Weight/Total each (numgen random mod Total, looked up in an
// interval map). Port 0 keeps the destination port; any other rewrites it,
// and then the rule must match a protocol first.
type dnat struct {
	Total uint32
	Slots []slot
	Port  uint16
}

// slot is a backend and the numbers [Lo, Hi] of the draw that pick it.
type slot struct {
	Addr   netip.Addr
	Weight uint32 // Hi-Lo+1
	Lo, Hi uint32
}

// reject refuses a connection: a TCP reset with TCPReset, otherwise an
// ICMP port unreachable. Clients fail at once instead of timing out.
type reject struct{ TCPReset bool }

// masquerade rewrites the source to an address of the output interface.
type masquerade struct{}

// drop discards the packet.
type drop struct{}

func (jump) isAction()       {}
func (vmap) isAction()       {}
func (dnat) isAction()       {}
func (reject) isAction()     {}
func (masquerade) isAction() {}
func (drop) isAction()       {}

func (a jump) String() string { return "jump " + a.Chain }
func (a vmap) String() string { return fmt.Sprintf("%s vmap @%s", a.Key, a.Map) }

func (a dnat) String() string {
	s := "dnat to "
	if len(a.Slots) == 1 {
		s += a.Slots[0].Addr.String()
	} else {
		s += fmt.Sprintf("numgen random mod %d map {", a.Total)
		for i, sl := range a.Slots {
			if i > 0 {
				s += ","
			}
			s += " " + sl.String()
		}
		s += " }"
	}
	if a.Port != 0 {
		s += fmt.Sprintf(":%d", a.Port)
	}
	return s
}

func (s slot) String() string {
	if s.Lo == s.Hi {
		return fmt.Sprintf("%d : %s", s.Lo, s.Addr)
	}
	return fmt.Sprintf("%d-%d : %s", s.Lo, s.Hi, s.Addr)
}

func (a reject) String() string {
	if a.TCPReset {
		return "reject with tcp reset"
	}
	return "reject with icmp port-unreachable"
}

func (masquerade) String() string { return "masquerade" }
func (drop) String() string       { return "drop" }
