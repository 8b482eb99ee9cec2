package bridge

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/warren-project/warren/internal/network/ipam"
)

func TestNewValidates(t *testing.T) {
	good := Config{Gateway: netip.MustParsePrefix("10.200.3.1/24"), Dir: "/run/warren/netns"}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // in the error; "" for none
	}{
		{"defaults", func(*Config) {}, ""},
		{"no gateway", func(c *Config) { c.Gateway = netip.Prefix{} }, "IPv4 address"},
		{"IPv6 gateway", func(c *Config) { c.Gateway = netip.MustParsePrefix("fd00::1/64") }, "IPv4 address"},
		{"block too small", func(c *Config) { c.Gateway = netip.MustParsePrefix("10.200.3.1/31") }, "/30 or larger"},
		{"network address", func(c *Config) { c.Gateway = netip.MustParsePrefix("10.200.3.0/24") }, "network or broadcast"},
		{"broadcast address", func(c *Config) { c.Gateway = netip.MustParsePrefix("10.200.3.255/24") }, "network or broadcast"},
		{"relative dir", func(c *Config) { c.Dir = "netns" }, "absolute"},
		{"long bridge name", func(c *Config) { c.Bridge = "warren0123456789" }, "longer than 15"},
		{"tiny MTU", func(c *Config) { c.MTU = 100 }, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			b, err := New(cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if b.cfg.Bridge != DefaultName || b.cfg.MTU != DefaultMTU || b.cfg.Logger == nil {
					t.Fatalf("defaults not filled in: %+v", b.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: got error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestCheckAttach(t *testing.T) {
	b, err := New(Config{Gateway: netip.MustParsePrefix("10.200.3.1/24"), Dir: "/run/warren/netns"})
	if err != nil {
		t.Fatal(err)
	}
	ok := AttachOptions{TaskID: "abc-1_X", Address: netip.MustParseAddr("10.200.3.7")}
	got, err := b.checkAttach(ok)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hostname != "abc-1_X" || got.DNS != netip.MustParseAddr("10.200.3.1") {
		t.Fatalf("defaults: hostname %q DNS %v, want the task ID and the gateway", got.Hostname, got.DNS)
	}
	tests := []struct {
		name   string
		change func(*AttachOptions)
		want   string
	}{
		{"no task ID", func(o *AttachOptions) { o.TaskID = "" }, "1 to 64"},
		{"path in task ID", func(o *AttachOptions) { o.TaskID = "../etc" }, "only letters"},
		{"dotted task ID", func(o *AttachOptions) { o.TaskID = "a.d" }, "only letters"},
		{"outside the block", func(o *AttachOptions) { o.Address = netip.MustParseAddr("10.200.4.7") }, "not an IPv4 address in"},
		{"no address", func(o *AttachOptions) { o.Address = netip.Addr{} }, "not an IPv4 address in"},
		{"the gateway", func(o *AttachOptions) { o.Address = netip.MustParseAddr("10.200.3.1") }, "gateway, network or broadcast"},
		{"broadcast", func(o *AttachOptions) { o.Address = netip.MustParseAddr("10.200.3.255") }, "gateway, network or broadcast"},
		{"hostname with space", func(o *AttachOptions) { o.Hostname = "a b" }, "hostname"},
		{"long hostname", func(o *AttachOptions) { o.Hostname = strings.Repeat("h", 65) }, "longer than 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.change(&o)
			if _, err := b.checkAttach(o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestVethName(t *testing.T) {
	a, b := vethName("task-a"), vethName("task-b")
	if len(a) > 15 || !strings.HasPrefix(a, "wrn") {
		t.Fatalf("veth name %q: want wrn… within 15 characters", a)
	}
	if a == b || a != vethName("task-a") {
		t.Fatalf("veth names %q, %q: want stable and distinct per task", a, b)
	}
}

func TestBroadcast(t *testing.T) {
	for in, want := range map[string]string{
		"10.200.3.1/24": "10.200.3.255",
		"10.200.0.1/16": "10.200.255.255",
		"10.0.0.5/30":   "10.0.0.7",
	} {
		if got := ipam.Broadcast(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("broadcast(%s) = %s, want %s", in, got, want)
		}
	}
}
