package lb

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestPlanIsDeterministic(t *testing.T) {
	services := []Service{
		web(Backend{Addr: addr("10.200.3.5"), Weight: 1}, Backend{Addr: addr("10.200.4.6"), Weight: 3}, Backend{Addr: addr("10.200.3.7")}),
		{ID: "apiid", Name: "api", VIP: addr("10.201.0.2"), Backends: []Backend{{Addr: addr("10.200.3.9")}},
			Ports: []Port{{Protocol: UDP, Target: 53, Published: 53}, {Protocol: TCP, Target: 443, Published: 443}, {Protocol: TCP, Target: 80, Published: 80}}},
		{ID: "dbid", Name: "db", VIP: addr("10.201.0.3")},
	}
	want := Plan(testCfg, services).String()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(services)
		for i := range shuffled {
			shuffled[i].Backends = slices.Clone(shuffled[i].Backends)
			shuffled[i].Ports = slices.Clone(shuffled[i].Ports)
			rng.Shuffle(len(shuffled[i].Backends), func(a, b int) {
				shuffled[i].Backends[a], shuffled[i].Backends[b] = shuffled[i].Backends[b], shuffled[i].Backends[a]
			})
			rng.Shuffle(len(shuffled[i].Ports), func(a, b int) {
				shuffled[i].Ports[a], shuffled[i].Ports[b] = shuffled[i].Ports[b], shuffled[i].Ports[a]
			})
		}
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if got := Plan(testCfg, shuffled).String(); got != want {
			t.Fatalf("input order changed the plan:\n%s\nwant\n%s", got, want)
		}
	}
	// Services by ID, then each one's VIP chain before its ports by protocol and number.
	var order []string
	for _, c := range Plan(testCfg, services).Chains[5:] {
		order = append(order, c.Name)
	}
	wantOrder := []string{"svc-apiid", "pub-apiid-tcp-80", "pub-apiid-tcp-443", "pub-apiid-udp-53", "svc-dbid", "svc-webid", "pub-webid-tcp-8080"}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("service chains %q, want %q", order, wantOrder)
	}
}

func TestPlanReadsLikeNft(t *testing.T) {
	rs := Plan(testCfg, []Service{web(Backend{Addr: addr("10.200.3.5"), Weight: 1}, Backend{Addr: addr("10.200.4.6"), Weight: 9})})
	want := `table ip warren {
	map vips {
		type ipv4_addr : verdict
		10.201.0.5 : goto svc-webid comment "web"
	}
	map published_tcp {
		type inet_service : verdict
		8080 : goto pub-webid-tcp-8080 comment "web"
	}
	map published_udp {
		type inet_service : verdict
	}
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		jump services
	}
	chain output {
		type nat hook output priority -100; policy accept;
		jump services
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		ct status dnat oifname "warren0" ip saddr 10.200.0.0/16 masquerade comment "hairpin"
		ct status dnat oifname "warren-wg" ip saddr != 10.200.0.0/16 masquerade comment "external client, remote backend"
		ct status dnat iifname "warren-wg" oifname "warren-wg" masquerade comment "mesh hairpin"
		ct status dnat ip saddr 127.0.0.0/8 masquerade comment "localhost published port"
	}
	chain input {
		type filter hook input priority 0; policy accept;
		iifname != "lo" ip daddr 127.0.0.0/8 ct status & dnat == 0 drop comment "route_localnet guard"
	}
	chain services {
		ip daddr vmap @vips
		fib daddr type local meta l4proto tcp th dport vmap @published_tcp
		fib daddr type local meta l4proto udp th dport vmap @published_udp
	}
	chain svc-webid {
		dnat to numgen random mod 10 map { 0 : 10.200.3.5, 1-9 : 10.200.4.6 } comment "web"
	}
	chain pub-webid-tcp-8080 {
		meta l4proto tcp dnat to numgen random mod 10 map { 0 : 10.200.3.5, 1-9 : 10.200.4.6 }:80 comment "web tcp/8080->80"
	}
}
`
	if got := rs.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestPlanSkipsConflictsAndOddInput(t *testing.T) {
	first := web(Backend{Addr: addr("10.200.3.5")})
	second := Service{ID: "zzz", Name: "other", VIP: first.VIP, Backends: first.Backends,
		Ports: []Port{{Protocol: TCP, Target: 81, Published: 8080}, {Protocol: TCP, Target: 82, Published: 0}}}
	v6 := Service{ID: "v6id", Name: "v6", VIP: addr("fd00::1"), Backends: []Backend{{Addr: addr("fd00::2")}}}
	sctp := Service{ID: "sid", Name: "s", Ports: []Port{{Protocol: "sctp", Target: 1, Published: 1}}}
	rs := Plan(testCfg, []Service{second, first, v6, sctp, {Name: "noid"}})

	m, _ := rs.Map(mapVIPs)
	if len(m.Elements) != 1 || m.Elements[0].Goto != "svc-webid" {
		t.Errorf("VIP map %v: the service first by ID should own the VIP", m.Elements)
	}
	p, _ := rs.Map(mapTCPPorts)
	if len(p.Elements) != 1 || p.Elements[0].Goto != "pub-webid-tcp-8080" {
		t.Errorf("port map %v: the service first by ID should own 8080", p.Elements)
	}
	for _, want := range []string{
		"service other: VIP 10.201.0.5 already belongs to service web",
		"service other: port tcp/8080: already published by service web",
		"service v6: backend fd00::2 is not an IPv4 address",
		"service v6: VIP fd00::1 is not IPv4",
		"service s: port sctp/1: protocol is not tcp or udp",
		`service "noid": empty, repeated or overlong ID ""`,
	} {
		if !slices.Contains(rs.Skipped, want) {
			t.Errorf("Skipped lacks %q:\n%s", want, strings.Join(rs.Skipped, "\n"))
		}
	}
	if len(rs.Skipped) != 6 {
		t.Errorf("Skipped has %d entries, want 6 (published 0 is ignored silently):\n%s",
			len(rs.Skipped), strings.Join(rs.Skipped, "\n"))
	}
	for _, c := range rs.Chains {
		if strings.Contains(c.Name, "zzz") || strings.Contains(c.Name, "v6id") {
			t.Errorf("chain %s of a skipped service or VIP", c.Name)
		}
	}
}
