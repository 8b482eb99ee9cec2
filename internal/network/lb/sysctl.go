package lb

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// sysctls are the settings the rules rely on, as paths under /proc/sys.
// They belong to the network namespace of the thread that writes them.
var sysctls = []struct{ path, why string }{
	// A published port reached at 127.0.0.1 is DNATed in output to a
	// backend behind the bridge: the packet then leaves a real interface
	// with a loopback source (masquerade rewrites it only in postrouting),
	// and the un-NATed reply arrives on the bridge addressed to 127.0.0.1.
	// The kernel drops both as martians unless route_localnet is set; the
	// input chain's guard drops what else this lets in.
	{"net/ipv4/conf/all/route_localnet", "localhost published ports"},
	// DNAT to a container or to another node is forwarding: without it,
	// every VIP and published port reached from a container or from the
	// network is dropped.
	{"net/ipv4/ip_forward", "forwarding to backends"},
}

// setSysctls sets each of sysctls to 1 where it is not already.
func setSysctls() error {
	for _, s := range sysctls {
		path := "/proc/sys/" + s.path
		cur, err := os.ReadFile(path)
		if err == nil && string(bytes.TrimSpace(cur)) == "1" {
			continue
		}
		if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("set sysctl %s=1 (needed for %s): %w; set it by hand with "+
				"`sysctl -w %s=1` or run warren with a writable /proc/sys", s.path, s.why, err,
				strings.ReplaceAll(s.path, "/", "."))
		}
	}
	return nil
}
