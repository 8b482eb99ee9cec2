package ipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParsePlan(t *testing.T) {
	p, err := ParsePlan("", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Subnet.String() != DefaultSubnet || p.NodePrefixLength != 24 || p.VIPPool.String() != DefaultVIPPool {
		t.Fatalf("defaults: %+v", p)
	}
	for _, tc := range []struct {
		subnet, pool string
		bits         int
		want         string
	}{
		{"10.0.0.0/33", "", 0, "not a CIDR"},
		{"fd00::/64", "", 0, "only IPv4"},
		{"10.0.0.0/16", "10.0.128.0/17", 0, "overlap"},
		{"10.0.0.0/16", "", 16, "does not fit"},
		{"10.0.0.0/16", "", 30, "does not fit"},
	} {
		_, err := ParsePlan(tc.subnet, tc.bits, tc.pool)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePlan(%q, %d, %q) = %v, want an error with %q", tc.subnet, tc.bits, tc.pool, err, tc.want)
		}
	}
}

func TestNodeBlocks(t *testing.T) {
	p, err := ParsePlan("10.9.0.0/22", 24, "")
	if err != nil {
		t.Fatal(err)
	}
	used := map[netip.Prefix]bool{}
	var got []string
	for range 4 {
		b, err := p.NodeBlock(used)
		if err != nil {
			t.Fatal(err)
		}
		used[b] = true
		got = append(got, b.String())
	}
	if strings.Join(got, " ") != "10.9.0.0/24 10.9.1.0/24 10.9.2.0/24 10.9.3.0/24" {
		t.Fatalf("blocks: %v", got)
	}
	if _, err := p.NodeBlock(used); !errors.Is(err, ErrExhausted) {
		t.Fatalf("fifth block: %v, want ErrExhausted", err)
	}
	delete(used, netip.MustParsePrefix("10.9.1.0/24"))
	if b, _ := p.NodeBlock(used); b.String() != "10.9.1.0/24" {
		t.Fatalf("released block not reused: %v", b)
	}
	if g := Gateway(netip.MustParsePrefix("10.9.1.0/24")); g.String() != "10.9.1.1" {
		t.Fatalf("gateway %v", g)
	}
}

func TestTaskAddresses(t *testing.T) {
	block := netip.MustParsePrefix("10.9.1.0/29") // .0 net, .1 gateway, .2-.6 tasks, .7 broadcast
	used := map[netip.Addr]bool{}
	var prev netip.Addr
	var got []string
	for range 5 {
		a, err := TaskAddress(block, used, prev)
		if err != nil {
			t.Fatal(err)
		}
		used[a], prev = true, a
		got = append(got, a.String())
	}
	if strings.Join(got, " ") != "10.9.1.2 10.9.1.3 10.9.1.4 10.9.1.5 10.9.1.6" {
		t.Fatalf("addresses: %v", got)
	}
	if _, err := TaskAddress(block, used, prev); !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "10.9.1.0/29") {
		t.Fatalf("full block: %v", err)
	}
	// Released .3 and .5: the search goes on after the last one handed out
	// (.6), wraps, and takes .3 before .5.
	delete(used, netip.MustParseAddr("10.9.1.3"))
	delete(used, netip.MustParseAddr("10.9.1.5"))
	a, _ := TaskAddress(block, used, prev)
	if a.String() != "10.9.1.3" {
		t.Fatalf("after wrap: %v", a)
	}
	// From .3 (released again), .5 comes next, not .3 again.
	if b, _ := TaskAddress(block, used, a); b.String() != "10.9.1.5" {
		t.Fatalf("after .3: %v, want the next free one, not .3 at once", b)
	}
}

func TestVIP(t *testing.T) {
	pool := netip.MustParsePrefix("10.201.0.0/16")
	a, err := VIP(pool, map[netip.Addr]bool{}, netip.Addr{})
	if err != nil || a.String() != "10.201.0.1" {
		t.Fatalf("first VIP %v %v", a, err)
	}
	small := netip.MustParsePrefix("10.201.0.0/30")
	used := map[netip.Addr]bool{netip.MustParseAddr("10.201.0.1"): true, netip.MustParseAddr("10.201.0.2"): true}
	if _, err := VIP(small, used, netip.Addr{}); !errors.Is(err, ErrExhausted) {
		t.Fatalf("full pool: %v", err)
	}
}
