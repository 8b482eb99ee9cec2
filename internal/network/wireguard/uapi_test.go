package wireguard

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func testKey(b byte) wgtypes.Key {
	var k wgtypes.Key
	k[0] = b
	return k
}

func TestFormatUAPI(t *testing.T) {
	got := formatUAPI([]peerChange{
		{key: testKey(1), remove: true},
		{key: testKey(2), endpoint: netip.MustParseAddrPort("10.99.0.2:51820"), keepalive: Keepalive,
			allowed: []netip.Prefix{netip.MustParsePrefix("10.200.2.0/24"), netip.MustParsePrefix("fd00::/64")}},
	})
	want := "public_key=01" + strings.Repeat("00", 31) + "\nremove=true\n" +
		"public_key=02" + strings.Repeat("00", 31) + "\nendpoint=10.99.0.2:51820\npersistent_keepalive_interval=25\n" +
		"replace_allowed_ips=true\nallowed_ip=10.200.2.0/24\nallowed_ip=fd00::/64\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestParseUAPI(t *testing.T) {
	text := "private_key=" + strings.Repeat("ab", 32) + "\nlisten_port=51820\n" +
		"public_key=01" + strings.Repeat("00", 31) + "\npreshared_key=" + strings.Repeat("00", 32) +
		"\nprotocol_version=1\nendpoint=[::ffff:10.99.0.2]:51820\nlast_handshake_time_sec=1700000000\n" +
		"last_handshake_time_nsec=5\ntx_bytes=100\nrx_bytes=200\npersistent_keepalive_interval=25\n" +
		"allowed_ip=10.200.2.0/24\n" +
		"public_key=02" + strings.Repeat("00", 31) + "\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n" +
		"tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n"
	got, err := parseUAPI(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []peerState{
		{key: testKey(1), endpoint: netip.MustParseAddrPort("10.99.0.2:51820"),
			allowed: []netip.Prefix{netip.MustParsePrefix("10.200.2.0/24")}, keepalive: 25 * time.Second,
			handshake: time.Unix(1700000000, 5), rx: 200, tx: 100},
		{key: testKey(2)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if port := listenPort(text); port != 51820 {
		t.Errorf("listen port %d, want 51820", port)
	}
	if port := listenPort("private_key=" + strings.Repeat("ab", 32) + "\n"); port != 0 {
		t.Errorf("listen port %d of a device without one, want 0", port)
	}
	if _, err := parseUAPI("public_key=zz\n"); err == nil {
		t.Error("bad key parsed")
	}
}

func TestDiffPeers(t *testing.T) {
	ep1 := netip.MustParseAddrPort("10.99.0.1:51820")
	ep2 := netip.MustParseAddrPort("10.99.0.2:51820")
	roamed := netip.MustParseAddrPort("192.0.2.7:40000")
	block := []netip.Prefix{netip.MustParsePrefix("10.200.1.0/24")}
	other := []netip.Prefix{netip.MustParsePrefix("10.200.9.0/24")}
	live := func(ep netip.AddrPort, allowed []netip.Prefix) []peerState {
		return []peerState{{key: testKey(1), endpoint: ep, allowed: allowed, keepalive: Keepalive}}
	}
	want := func(ep netip.AddrPort, allowed []netip.Prefix) map[wgtypes.Key]Peer {
		return map[wgtypes.Key]Peer{testKey(1): {PublicKey: testKey(1), Endpoint: ep, AllowedIPs: allowed}}
	}
	update := []peerChange{{key: testKey(1), endpoint: ep2, allowed: block, keepalive: Keepalive}}
	for _, tc := range []struct {
		name       string
		live       []peerState
		want       map[wgtypes.Key]Peer
		configured map[wgtypes.Key]netip.AddrPort
		changes    []peerChange
	}{
		{"unchanged", live(ep1, block), want(ep1, block), nil, nil},
		{"new", nil, want(ep1, block), nil, []peerChange{{key: testKey(1), endpoint: ep1, allowed: block, keepalive: Keepalive}}},
		{"gone", live(ep1, block), nil, nil, []peerChange{{key: testKey(1), remove: true}}},
		{"endpoint changed", live(ep1, block), want(ep2, block), nil, update},
		{"allowed IPs changed", live(ep2, other), want(ep2, block), nil, update},
		{"keepalive off", []peerState{{key: testKey(1), endpoint: ep2, allowed: block}}, want(ep2, block), nil, update},
		{"roamed, registration unchanged", live(roamed, block), want(ep2, block),
			map[wgtypes.Key]netip.AddrPort{testKey(1): ep2}, nil},
		{"roamed, registration changed", live(roamed, block), want(ep2, block),
			map[wgtypes.Key]netip.AddrPort{testKey(1): ep1}, update},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := diffPeers(tc.live, tc.want, tc.configured)
			if !reflect.DeepEqual(got, tc.changes) {
				t.Errorf("got  %+v\nwant %+v", got, tc.changes)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	own := testKey(9)
	l := &Link{cfg: Config{PrivateKey: own}}
	pfx := netip.MustParsePrefix
	got, err := l.normalize([]Peer{{PublicKey: testKey(1),
		AllowedIPs: []netip.Prefix{pfx("10.200.2.7/24"), pfx("10.200.1.0/24"), pfx("10.200.2.0/24")}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Prefix{pfx("10.200.1.0/24"), pfx("10.200.2.0/24")}; !reflect.DeepEqual(got[testKey(1)].AllowedIPs, want) {
		t.Errorf("allowed IPs %v, want masked, sorted, unique %v", got[testKey(1)].AllowedIPs, want)
	}
	for name, peers := range map[string][]Peer{
		"no key":         {{}},
		"self":           {{PublicKey: own.PublicKey()}},
		"duplicate":      {{PublicKey: testKey(1)}, {PublicKey: testKey(1)}},
		"shared prefix":  {{PublicKey: testKey(1), AllowedIPs: []netip.Prefix{pfx("10.200.2.0/24")}}, {PublicKey: testKey(2), AllowedIPs: []netip.Prefix{pfx("10.200.2.0/24")}}},
		"invalid prefix": {{PublicKey: testKey(1), AllowedIPs: []netip.Prefix{{}}}},
	} {
		if _, err := l.normalize(peers); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{PrivateKey: testKey(1), Address: netip.MustParsePrefix("10.200.3.1/32")}.withDefaults()
	if err := ok.validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"long name":  func(c *Config) { c.Name = "a-very-long-interface" },
		"no key":     func(c *Config) { c.PrivateKey = wgtypes.Key{} },
		"no address": func(c *Config) { c.Address = netip.Prefix{} },
		"bad port":   func(c *Config) { c.ListenPort = 70000 },
		"tiny MTU":   func(c *Config) { c.MTU = 500 },
		"bad mode":   func(c *Config) { c.Mode = 7 },
	} {
		c := ok
		mutate(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
