package lb

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Names of the chains and maps every Ruleset has.
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainInput       = "input"
	chainServices    = "services"
	mapVIPs          = "vips"
	mapTCPPorts      = "published_tcp"
	mapUDPPorts      = "published_udp"
)

// maxIDLen keeps chain names ("pub-ID-tcp-65535") within the kernel's
// 255 bytes: one overlong name would fail the whole batch.
const maxIDLen = 200

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// Plan returns the rules Sync writes for services, and does nothing else.
// The same services in any order give the same Ruleset: services are taken
// by ID, ports by protocol and number, backends by address; the first of
// two services claiming one VIP or published port keeps it, and the other
// is named in Skipped.
//
// Packets enter at prerouting (from containers and the network) and output
// (from the node itself); both jump to "services", which looks the
// destination up in the VIP map, then a local destination's port in the
// published-port maps. Each entry leads to a chain of one service that
// DNATs to a backend drawn by weight, or rejects when there is none.
// Traffic between containers on the bridge has a container's address as
// destination, matches neither and is left alone.
func Plan(cfg Config, services []Service) Ruleset {
	cfg = cfg.withDefaults()
	p := &planner{
		cfg:      cfg,
		vipOwner: map[netip.Addr]string{},
		ids:      map[string]bool{},
		ports:    map[Protocol]*Map{TCP: {Name: mapTCPPorts, Key: "inet_service"}, UDP: {Name: mapUDPPorts, Key: "inet_service"}},
		portOf:   map[portKey]string{},
	}
	sorted := slices.Clone(services)
	slices.SortStableFunc(sorted, func(a, b Service) int { return cmp.Compare(a.ID, b.ID) })
	for _, s := range sorted {
		p.service(s)
	}
	return p.ruleset()
}

type portKey struct {
	proto Protocol
	port  uint16
}

// planner gathers the service chains and map entries of one Plan.
type planner struct {
	cfg      Config
	ids      map[string]bool
	vips     Map
	vipOwner map[netip.Addr]string
	ports    map[Protocol]*Map
	portOf   map[portKey]string
	chains   []Chain
	skipped  []string
}

func (p *planner) skip(format string, args ...any) {
	p.skipped = append(p.skipped, fmt.Sprintf(format, args...))
}

func (p *planner) service(s Service) {
	if s.ID == "" || p.ids[s.ID] || len(s.ID) > maxIDLen {
		p.skip("service %q: empty, repeated or overlong ID %q", s.Name, s.ID)
		return
	}
	p.ids[s.ID] = true
	for _, b := range s.Backends {
		if !b.Addr.Is4() {
			p.skip("service %s: backend %s is not an IPv4 address", s.Name, b.Addr)
		}
	}
	p.vip(s)
	ports := slices.Clone(s.Ports)
	slices.SortStableFunc(ports, func(a, b Port) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Published, b.Published),
			cmp.Compare(a.Mode, b.Mode), cmp.Compare(a.Target, b.Target))
	})
	for _, port := range ports {
		p.port(s, port)
	}
}

func (p *planner) vip(s Service) {
	switch {
	case !s.VIP.IsValid():
		return
	case !s.VIP.Is4():
		p.skip("service %s: VIP %s is not IPv4", s.Name, s.VIP)
		return
	case p.vipOwner[s.VIP] != "":
		p.skip("service %s: VIP %s already belongs to service %s", s.Name, s.VIP, p.vipOwner[s.VIP])
		return
	}
	p.vipOwner[s.VIP] = s.Name
	name := "svc-" + s.ID
	p.vips.Elements = append(p.vips.Elements, MapElement{Addr: s.VIP, Goto: name, Comment: comment(s.Name)})
	p.chains = append(p.chains, Chain{Name: name, Rules: balance(s.Backends, "", 0, comment(s.Name))})
}

func (p *planner) port(s Service, port Port) {
	if port.Published == 0 {
		return
	}
	where := fmt.Sprintf("service %s: port %s/%d", s.Name, port.Protocol, port.Published)
	m := p.ports[port.Protocol]
	switch {
	case m == nil:
		p.skip("%s: protocol is not tcp or udp", where)
		return
	case port.Target == 0:
		p.skip("%s: no target port", where)
		return
	}
	backends := s.Backends
	if port.Mode == Host {
		backends = slices.DeleteFunc(slices.Clone(backends), func(b Backend) bool { return !b.Local })
		if len(backends) == 0 {
			return // host mode answers only where a task runs
		}
	}
	key := portKey{port.Protocol, port.Published}
	if owner := p.portOf[key]; owner != "" {
		p.skip("%s: already published by service %s", where, owner)
		return
	}
	p.portOf[key] = s.Name
	name := fmt.Sprintf("pub-%s-%s-%d", s.ID, port.Protocol, port.Published)
	note := comment(fmt.Sprintf("%s %s/%d->%d", s.Name, port.Protocol, port.Published, port.Target))
	m.Elements = append(m.Elements, MapElement{Port: port.Published, Goto: name, Comment: comment(s.Name)})
	p.chains = append(p.chains, Chain{Name: name, Rules: balance(backends, port.Protocol, port.Target, note)})
}

// balance returns the rules of one service chain: DNAT to a backend drawn
// by weight, to port (0: keep the port), or reject when there is none.
// proto "" means any protocol (a VIP).
func balance(backends []Backend, proto Protocol, port uint16, note string) []Rule {
	var only []Match
	if proto != "" {
		only = []Match{l4proto{proto}}
	}
	total, slots := pickSlots(backends)
	if total > 0 {
		return []Rule{{Match: only, Action: dnat{Total: total, Slots: slots, Port: port}, Comment: note}}
	}
	var rules []Rule
	if proto == "" || proto == TCP {
		rules = append(rules, Rule{Match: []Match{l4proto{TCP}}, Action: reject{TCPReset: true}, Comment: note + " (no backends)"})
	}
	if proto != TCP {
		rules = append(rules, Rule{Match: only, Action: reject{}, Comment: note + " (no backends)"})
	}
	return rules
}

// comment keeps a rule comment within the kernel's userdata limit.
func comment(s string) string {
	if len(s) > 128 {
		return strings.ToValidUTF8(s[:128], "")
	}
	return s
}

func (p *planner) ruleset() Ruleset {
	p.vips.Name, p.vips.Key = mapVIPs, "ipv4_addr"
	return Ruleset{
		Table:   p.cfg.Table,
		Maps:    []Map{p.vips, *p.ports[TCP], *p.ports[UDP]},
		Chains:  append(p.baseChains(), p.chains...),
		Skipped: p.skipped,
	}
}
