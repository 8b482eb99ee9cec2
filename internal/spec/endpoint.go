package spec

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/warren-project/warren/api"
)

// Network modes of a container.
const (
	NetworkOverlay = "" // the cluster overlay: an address, the service VIP, DNS
	NetworkHost    = "host"
)

// ValidateNetwork checks a container's network mode.
func ValidateNetwork(mode string) error {
	switch mode {
	case NetworkOverlay, NetworkHost:
		return nil
	}
	return invalid("task.container.network", "unknown network %q: use \"overlay\" (the default) or \"host\"", mode)
}

// validateEndpoint checks published ports: each needs a protocol, a target
// and a published port, and no two may publish the same port.
func validateEndpoint(s *api.ServiceSpec) error {
	ports := s.GetEndpoint().GetPorts()
	if len(ports) == 0 {
		return nil
	}
	if s.GetTask().GetContainer().GetNetwork() == NetworkHost {
		return invalid("endpoint.ports", "a service on the host network cannot publish ports: its containers bind the node's ports themselves; drop --publish or use the overlay")
	}
	seen := map[string]bool{}
	for i, p := range ports {
		field := fmt.Sprintf("endpoint.ports[%d]", i)
		if p.GetProtocol() != "tcp" && p.GetProtocol() != "udp" {
			return invalid(field+".protocol", "unknown protocol %q: use tcp or udp", p.GetProtocol())
		}
		if err := validatePort(field+".target_port", "a published port's target", p.GetTargetPort()); err != nil {
			return err
		}
		if err := validatePort(field+".published_port", "a published port", p.GetPublishedPort()); err != nil {
			return err
		}
		key := PortKey(p)
		if seen[key] {
			return invalid(field, "port %s is published twice", key)
		}
		seen[key] = true
	}
	return nil
}

// PortKey names a published port as users write it: "8080/tcp".
func PortKey(p *api.PortConfig) string {
	return strconv.FormatUint(uint64(p.GetPublishedPort()), 10) + "/" + p.GetProtocol()
}

// ParsePublish reads a --publish value: "8080:80", "8080:80/udp", or the
// long form "mode=host,published=8080,target=80,protocol=tcp".
func ParsePublish(v string) (*api.PortConfig, error) {
	p := &api.PortConfig{Protocol: "tcp"}
	if strings.Contains(v, "=") {
		return p, parsePublishFields(p, v)
	}
	ports, proto, ok := strings.Cut(v, "/")
	if ok {
		p.Protocol = proto
	}
	pub, target, ok := strings.Cut(ports, ":")
	if !ok {
		return nil, fmt.Errorf("--publish %q: write PUBLISHED:TARGET[/PROTOCOL], for example 8080:80", v)
	}
	var err error
	if p.PublishedPort, err = parsePort(pub); err != nil {
		return nil, fmt.Errorf("--publish %q: published port: %w", v, err)
	}
	if p.TargetPort, err = parsePort(target); err != nil {
		return nil, fmt.Errorf("--publish %q: target port: %w", v, err)
	}
	return p, nil
}

func parsePublishFields(p *api.PortConfig, v string) error {
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		var err error
		switch strings.TrimSpace(k) {
		case "mode":
			switch val {
			case "ingress":
				p.PublishMode = api.PublishMode_PUBLISH_MODE_INGRESS
			case "host":
				p.PublishMode = api.PublishMode_PUBLISH_MODE_HOST
			default:
				return fmt.Errorf("--publish %q: mode %q: use ingress or host", v, val)
			}
		case "published":
			p.PublishedPort, err = parsePort(val)
		case "target":
			p.TargetPort, err = parsePort(val)
		case "protocol":
			p.Protocol = val
		default:
			return fmt.Errorf("--publish %q: unknown field %q: use mode, published, target, protocol", v, k)
		}
		if err != nil {
			return fmt.Errorf("--publish %q: %s: %w", v, k, err)
		}
	}
	if p.PublishedPort == 0 || p.TargetPort == 0 {
		return fmt.Errorf("--publish %q: both published= and target= are required", v)
	}
	return nil
}

func parsePort(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port from 1 to 65535", s)
	}
	return uint32(n), nil
}

// FormatPort shows a published port as `service ls` does:
// "8080->80/tcp" or "8080->80/tcp (host)".
func FormatPort(p *api.PortConfig) string {
	s := fmt.Sprintf("%d->%d/%s", p.GetPublishedPort(), p.GetTargetPort(), p.GetProtocol())
	if p.GetPublishMode() == api.PublishMode_PUBLISH_MODE_HOST {
		s += " (host)"
	}
	return s
}
