package dns

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	mdns "github.com/miekg/dns"
)

// upstreamsOf returns the "ip:port" resolvers to forward to: cfg.Upstreams
// if set, else the nameservers of cfg.ResolvConf.
func upstreamsOf(cfg Config, log *slog.Logger) ([]string, error) {
	if len(cfg.Upstreams) > 0 {
		out := make([]string, 0, len(cfg.Upstreams))
		for _, u := range cfg.Upstreams {
			ap, err := netip.ParseAddrPort(u)
			if err != nil {
				return nil, fmt.Errorf("dns: upstream resolver %q: want ip:port: %w", u, err)
			}
			out = append(out, ap.String())
		}
		return out, nil
	}
	ups, err := readResolvConf(cfg.ResolvConf, log)
	if err != nil {
		return nil, err
	}
	if len(ups) == 0 {
		log.Warn("dns: no usable nameserver in resolv.conf; names outside the cluster will fail (SERVFAIL) "+
			"until one is added there or given in the configuration", "dns.resolv_conf", cfg.ResolvConf)
	}
	return ups, nil
}

// readResolvConf returns the nameservers of a resolv.conf file as
// "ip:port". A loopback nameserver (127.0.0.53, systemd-resolved) is kept:
// the server runs in the host's network namespace, where it answers.
// Entries that are not IP addresses are skipped with a warning.
func readResolvConf(path string, log *slog.Logger) ([]string, error) {
	conf, err := mdns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("dns: read upstream resolvers from %s (fix the file, or name the resolvers "+
			"in the configuration): %w", path, err)
	}
	var out []string
	for _, s := range conf.Servers {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			log.Warn("dns: skipping nameserver that is not an IP address", "dns.resolv_conf", path,
				"dns.nameserver", s)
			continue
		}
		out = append(out, net.JoinHostPort(ip.String(), conf.Port))
	}
	return out, nil
}
