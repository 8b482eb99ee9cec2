package lb

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

var testCfg = Config{
	Table: "warren", Bridge: "warren0", WireGuard: "warren-wg",
	Subnet: netip.MustParsePrefix("10.200.0.0/16"),
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func web(backends ...Backend) Service {
	return Service{
		ID: "webid", Name: "web", VIP: addr("10.201.0.5"),
		Ports:    []Port{{Protocol: TCP, Target: 80, Published: 8080}},
		Backends: backends,
	}
}

func rules(t *testing.T, rs Ruleset, chain string) []string {
	t.Helper()
	c, ok := rs.Chain(chain)
	if !ok {
		t.Fatalf("no chain %s in\n%s", chain, rs)
	}
	return c.Strings()
}

func wantRules(t *testing.T, rs Ruleset, chain string, want ...string) {
	t.Helper()
	if got := rules(t, rs, chain); !slices.Equal(got, want) {
		t.Errorf("chain %s:\n got %q\nwant %q\nruleset:\n%s", chain, got, want, rs)
	}
}

func TestPlanWeightsBecomeMapSlots(t *testing.T) {
	tests := []struct {
		name     string
		backends []Backend
		want     string
	}{
		{"one", []Backend{{Addr: addr("10.200.3.5")}},
			"dnat to 10.200.3.5"},
		{"equal, zero means one", []Backend{{Addr: addr("10.200.3.6")}, {Addr: addr("10.200.3.5"), Weight: 1}},
			"dnat to numgen random mod 2 map { 0 : 10.200.3.5, 1 : 10.200.3.6 }"},
		{"canary 10/90", []Backend{{Addr: addr("10.200.3.5"), Weight: 10}, {Addr: addr("10.200.4.9"), Weight: 90}},
			"dnat to numgen random mod 10 map { 0 : 10.200.3.5, 1-9 : 10.200.4.9 }"},
		{"1/2/3", []Backend{{Addr: addr("10.200.3.7"), Weight: 3}, {Addr: addr("10.200.3.6"), Weight: 2}, {Addr: addr("10.200.3.5"), Weight: 1}},
			"dnat to numgen random mod 6 map { 0 : 10.200.3.5, 1-2 : 10.200.3.6, 3-5 : 10.200.3.7 }"},
		{"listed twice: weights add", []Backend{{Addr: addr("10.200.3.5")}, {Addr: addr("10.200.3.5")}, {Addr: addr("10.200.3.6"), Weight: 2}},
			"dnat to numgen random mod 2 map { 0 : 10.200.3.5, 1 : 10.200.3.6 }"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := Plan(testCfg, []Service{web(tt.backends...)})
			wantRules(t, rs, "svc-webid", tt.want+` comment "web"`)
			wantRules(t, rs, "pub-webid-tcp-8080", "meta l4proto tcp "+tt.want+`:80 comment "web tcp/8080->80"`)
		})
	}
}

func TestPlanSlotsCoverTheDrawExactly(t *testing.T) {
	backends := []Backend{{Addr: addr("10.200.3.5"), Weight: 1}, {Addr: addr("10.200.3.6"), Weight: 9}}
	rs := Plan(testCfg, []Service{web(backends...)})
	c, _ := rs.Chain("svc-webid")
	d := c.Rules[0].Action.(dnat)
	if d.Total != 10 || len(d.Slots) != 2 {
		t.Fatalf("draw mod %d over %d slots, want mod 10 over 2", d.Total, len(d.Slots))
	}
	// Probability of a backend = its share of the draw: 1/10 and 9/10.
	if d.Slots[0].Weight != 1 || d.Slots[1].Weight != 9 {
		t.Errorf("slot weights %d, %d; want 1, 9", d.Slots[0].Weight, d.Slots[1].Weight)
	}
}

func TestPickSlotsHugeWeightsStayUnder32Bits(t *testing.T) {
	total, slots := pickSlots([]Backend{
		{Addr: addr("10.0.0.1"), Weight: 1<<32 - 1}, {Addr: addr("10.0.0.2"), Weight: 1<<32 - 2},
		{Addr: addr("10.0.0.3"), Weight: 1},
	})
	if total > maxDraw || len(slots) != 3 {
		t.Fatalf("total %d over %d slots", total, len(slots))
	}
	if last := slots[len(slots)-1]; last.Hi != total-1 || slots[2].Weight < 1 {
		t.Errorf("slots %v do not end at total %d or lost a backend", slots, total)
	}
}

func TestPlanZeroBackendsReject(t *testing.T) {
	s := web()
	s.Ports = append(s.Ports, Port{Protocol: UDP, Target: 53, Published: 5353})
	rs := Plan(testCfg, []Service{s})
	wantRules(t, rs, "svc-webid",
		`meta l4proto tcp reject with tcp reset comment "web (no backends)"`,
		`reject with icmp port-unreachable comment "web (no backends)"`)
	wantRules(t, rs, "pub-webid-tcp-8080",
		`meta l4proto tcp reject with tcp reset comment "web tcp/8080->80 (no backends)"`)
	wantRules(t, rs, "pub-webid-udp-5353",
		`meta l4proto udp reject with icmp port-unreachable comment "web udp/5353->53 (no backends)"`)
}

func TestPlanHostModeOnlyLocalBackends(t *testing.T) {
	s := web(Backend{Addr: addr("10.200.3.5"), Local: true}, Backend{Addr: addr("10.200.4.5")}, Backend{Addr: addr("10.200.3.6"), Local: true})
	s.Ports = []Port{{Protocol: TCP, Target: 80, Published: 8080, Mode: Host}}
	rs := Plan(testCfg, []Service{s})
	wantRules(t, rs, "pub-webid-tcp-8080",
		`meta l4proto tcp dnat to numgen random mod 2 map { 0 : 10.200.3.5, 1 : 10.200.3.6 }:80 comment "web tcp/8080->80"`)
	// The VIP still reaches every task.
	if got := rules(t, rs, "svc-webid")[0]; !strings.Contains(got, "10.200.4.5") {
		t.Errorf("VIP rule %q misses the remote backend", got)
	}

	s.Backends = []Backend{{Addr: addr("10.200.4.5")}}
	rs = Plan(testCfg, []Service{s})
	if _, ok := rs.Chain("pub-webid-tcp-8080"); ok {
		t.Errorf("host-mode port published on a node without a task:\n%s", rs)
	}
	if m, _ := rs.Map(mapTCPPorts); len(m.Elements) != 0 {
		t.Errorf("host-mode port in %s without a local task: %v", mapTCPPorts, m.Elements)
	}
}

func TestPlanIngressOnEveryNode(t *testing.T) {
	// No backend runs here: the port still answers and DNATs through the mesh.
	rs := Plan(testCfg, []Service{web(Backend{Addr: addr("10.200.4.5")}, Backend{Addr: addr("10.200.5.5")})})
	m, _ := rs.Map(mapTCPPorts)
	if len(m.Elements) != 1 || m.Elements[0].String() != `8080 : goto pub-webid-tcp-8080 comment "web"` {
		t.Fatalf("%s: %v", mapTCPPorts, m.Elements)
	}
	wantRules(t, rs, "pub-webid-tcp-8080",
		`meta l4proto tcp dnat to numgen random mod 2 map { 0 : 10.200.4.5, 1 : 10.200.5.5 }:80 comment "web tcp/8080->80"`)
	wantRules(t, rs, chainServices,
		"ip daddr vmap @vips",
		"fib daddr type local meta l4proto tcp th dport vmap @published_tcp",
		"fib daddr type local meta l4proto udp th dport vmap @published_udp")
}

func TestPlanHooksAndMasquerade(t *testing.T) {
	rs := Plan(testCfg, nil)
	wantRules(t, rs, chainPrerouting, "jump services")
	wantRules(t, rs, chainOutput, "jump services")
	wantRules(t, rs, chainPostrouting,
		`ct status dnat oifname "warren0" ip saddr 10.200.0.0/16 masquerade comment "hairpin"`,
		`ct status dnat oifname "warren-wg" ip saddr != 10.200.0.0/16 masquerade comment "external client, remote backend"`,
		`ct status dnat iifname "warren-wg" oifname "warren-wg" masquerade comment "mesh hairpin"`,
		`ct status dnat ip saddr 127.0.0.0/8 masquerade comment "localhost published port"`)
	wantRules(t, rs, chainInput,
		`iifname != "lo" ip daddr 127.0.0.0/8 ct status & dnat == 0 drop comment "route_localnet guard"`)
	hooks := map[string]Hook{}
	for _, c := range rs.Chains {
		if c.Hook != nil {
			hooks[c.Name] = *c.Hook
		}
	}
	want := map[string]Hook{
		chainPrerouting: {"nat", "prerouting", -100}, chainOutput: {"nat", "output", -100},
		chainPostrouting: {"nat", "postrouting", 100}, chainInput: {"filter", "input", 0},
	}
	for name, h := range want {
		if hooks[name] != h {
			t.Errorf("chain %s hook %+v, want %+v", name, hooks[name], h)
		}
	}
}
