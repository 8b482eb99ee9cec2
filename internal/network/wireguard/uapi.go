package wireguard

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The userspace device speaks WireGuard's cross-platform configuration
// protocol (https://www.wireguard.com/xplatform/): key=value lines, keys
// in hex, a public_key line opening each peer's section.

// formatUAPI writes changes as one "set" operation. Updated peers get
// their allowed IPs replaced, which keeps their session.
func formatUAPI(changes []peerChange) string {
	var b strings.Builder
	for _, c := range changes {
		fmt.Fprintf(&b, "public_key=%s\n", hexKey(c.key))
		if c.remove {
			b.WriteString("remove=true\n")
			continue
		}
		if c.endpoint.IsValid() {
			fmt.Fprintf(&b, "endpoint=%s\n", c.endpoint)
		}
		fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", int(c.keepalive/time.Second))
		b.WriteString("replace_allowed_ips=true\n")
		for _, p := range c.allowed {
			fmt.Fprintf(&b, "allowed_ip=%s\n", p)
		}
	}
	return b.String()
}

// parseUAPI reads the peers out of a "get" operation's answer. Device
// lines and keys it does not know are skipped.
func parseUAPI(text string) ([]peerState, error) {
	var peers []peerState
	var cur *peerState
	var secs, nsecs int64
	finish := func() {
		if cur != nil && (secs != 0 || nsecs != 0) {
			cur.handshake = time.Unix(secs, nsecs)
		}
	}
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("bad configuration line %q", line)
		}
		if key == "public_key" {
			finish()
			k, err := parseHexKey(value)
			if err != nil {
				return nil, err
			}
			peers = append(peers, peerState{key: k})
			cur, secs, nsecs = &peers[len(peers)-1], 0, 0
			continue
		}
		if cur == nil {
			continue // a device line
		}
		if err := parsePeerLine(cur, key, value, &secs, &nsecs); err != nil {
			return nil, fmt.Errorf("peer %s: %s=%s: %w", cur.key, key, value, err)
		}
	}
	finish()
	return peers, nil
}

// listenPort reads the device's port out of a "get" answer; 0 if none.
func listenPort(text string) int {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "listen_port="); ok {
			port, _ := strconv.Atoi(v)
			return port
		}
	}
	return 0
}

func parsePeerLine(p *peerState, key, value string, secs, nsecs *int64) error {
	var err error
	switch key {
	case "endpoint":
		var ap netip.AddrPort
		ap, err = netip.ParseAddrPort(value)
		p.endpoint = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case "allowed_ip":
		var pfx netip.Prefix
		pfx, err = netip.ParsePrefix(value)
		p.allowed = append(p.allowed, pfx)
	case "persistent_keepalive_interval":
		var s int64
		s, err = strconv.ParseInt(value, 10, 32)
		p.keepalive = time.Duration(s) * time.Second
	case "last_handshake_time_sec":
		*secs, err = strconv.ParseInt(value, 10, 64)
	case "last_handshake_time_nsec":
		*nsecs, err = strconv.ParseInt(value, 10, 64)
	case "rx_bytes":
		p.rx, err = strconv.ParseInt(value, 10, 64)
	case "tx_bytes":
		p.tx, err = strconv.ParseInt(value, 10, 64)
	}
	return err
}

func hexKey(k wgtypes.Key) string { return hex.EncodeToString(k[:]) }

func parseHexKey(s string) (wgtypes.Key, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return wgtypes.Key{}, fmt.Errorf("bad key %q: %w", s, err)
	}
	k, err := wgtypes.NewKey(b)
	if err != nil {
		return wgtypes.Key{}, fmt.Errorf("bad key %q: %w", s, err)
	}
	return k, nil
}
