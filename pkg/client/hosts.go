package client

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// endpoint is a parsed host.
type endpoint struct {
	network string // "unix" or "tcp"
	addr    string // socket path, or host:port
}

func (e endpoint) String() string {
	if e.network == "unix" {
		return "unix://" + e.addr
	}
	return "tcp://" + e.addr
}

func (e endpoint) target() string {
	if e.network == "unix" {
		return "unix://" + e.addr
	}
	// passthrough hands host:port to the dialer as it is, so the name is
	// resolved by the system resolver at each connect.
	return "passthrough:///" + e.addr
}

// credentials are the endpoint's transport security: none for the root-only
// socket (file permissions are its authentication), mutual TLS over tcp,
// checking the manager's certificate against the name dialled.
func (e endpoint) credentials(base *tls.Config) credentials.TransportCredentials {
	if e.network == "unix" {
		return insecure.NewCredentials()
	}
	cfg := base.Clone()
	cfg.ServerName, _, _ = net.SplitHostPort(e.addr)
	return credentials.NewTLS(cfg)
}

// DefaultTLSDir is $WARREN_TLS_DIR, else ~/.warren/tls.
func DefaultTLSDir() string {
	if d := os.Getenv(TLSDirEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".warren", "tls")
}

// resolveHosts parses the hosts New was given (each entry may hold several,
// separated by commas), falling back to $WARREN_HOST, then DefaultHost. Unix
// sockets come first: the local manager answers without a network hop, and
// only there does a dead manager fail at once. Duplicates go.
func resolveHosts(lists ...[]string) ([]endpoint, error) {
	var raw []string
	for _, l := range lists {
		raw = append(raw, splitHosts(l...)...)
	}
	if len(raw) == 0 {
		raw = splitHosts(os.Getenv(HostEnv))
	}
	if len(raw) == 0 {
		raw = []string{DefaultHost}
	}
	var unix, tcp []endpoint
	for _, h := range raw {
		ep, err := parseHost(h)
		if err != nil {
			return nil, err
		}
		if slices.Contains(unix, ep) || slices.Contains(tcp, ep) {
			continue
		}
		if ep.network == "unix" {
			unix = append(unix, ep)
		} else {
			tcp = append(tcp, ep)
		}
	}
	return append(unix, tcp...), nil
}

// splitHosts splits comma-separated host lists, dropping empty entries.
func splitHosts(hosts ...string) []string {
	var out []string
	for _, h := range hosts {
		for _, part := range strings.Split(h, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func parseHost(host string) (endpoint, error) {
	bad := func(why string) (endpoint, error) {
		return endpoint{}, fmt.Errorf("invalid Warren host %q: %s; use unix:///path/to/warren.sock or tcp://HOST:PORT", host, why)
	}
	scheme, rest, ok := strings.Cut(host, "://")
	if !ok {
		// Forgive a bare path or host:port: the meaning is plain.
		scheme, rest = "tcp", host
		if strings.HasPrefix(host, "/") {
			scheme = "unix"
		}
	}
	switch scheme {
	case "unix":
		if !strings.HasPrefix(rest, "/") {
			return bad("the socket path must be absolute")
		}
		return endpoint{network: "unix", addr: rest}, nil
	case "tcp":
		rest = strings.TrimSuffix(rest, "/")
		if rest == "" || strings.Contains(rest, "/") {
			return bad("expected HOST:PORT after tcp://")
		}
		if _, _, err := net.SplitHostPort(rest); err != nil {
			rest = net.JoinHostPort(strings.Trim(rest, "[]"), DefaultPort)
		}
		return endpoint{network: "tcp", addr: rest}, nil
	}
	return bad("unknown scheme " + scheme)
}

// hostList joins endpoints for a message: "a", "a and b", "a, b and c".
func hostList(hosts []string) string {
	if len(hosts) <= 1 {
		return strings.Join(hosts, "")
	}
	return strings.Join(hosts[:len(hosts)-1], ", ") + " and " + hosts[len(hosts)-1]
}
