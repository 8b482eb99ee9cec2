package spec

import (
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
)

// MinHealthInterval is the shortest health check interval or timeout (as
// Docker's): shorter would have a node do little but probe.
const MinHealthInterval = time.Millisecond

const healthField = "task.container.healthcheck"

// validateHealthCheck checks a container's health check: one probe that
// can run, or none (the image's HEALTHCHECK, with these timings), or
// disabled alone.
func validateHealthCheck(h *api.HealthCheck) error {
	if h == nil {
		return nil
	}
	if h.GetDisabled() {
		if h.GetProbe() != nil || h.GetInterval() != nil || h.GetTimeout() != nil || h.GetStartPeriod() != nil || h.GetRetries() != 0 {
			return invalid(healthField+".disabled", "--no-healthcheck turns health checks off: give it without a probe or --health-* timings")
		}
		return nil
	}
	if err := validateProbe(h); err != nil {
		return err
	}
	durations := []struct {
		name, what string
		d          *durationpb.Duration
		min        time.Duration
	}{
		{"interval", "health check interval", h.GetInterval(), MinHealthInterval},
		{"timeout", "health check timeout", h.GetTimeout(), MinHealthInterval},
		{"start_period", "health check start period", h.GetStartPeriod(), 0},
	}
	for _, d := range durations {
		if d.d == nil {
			continue
		}
		if err := validateDuration(healthField+"."+d.name, d.what, d.d); err != nil {
			return err
		}
		if v := d.d.AsDuration(); v != 0 && v < d.min {
			return invalid(healthField+"."+d.name, "the %s (%s) is too short: give at least %s, or 0 for the default", d.what, v, d.min)
		}
	}
	return nil
}

func validateProbe(h *api.HealthCheck) error {
	switch p := h.GetProbe().(type) {
	case *api.HealthCheck_Exec:
		cmd := p.Exec.GetCommand()
		if len(cmd) == 0 || strings.TrimSpace(cmd[0]) == "" {
			return invalid(healthField+".exec.command", "the health check command is empty: give a command such as --health-cmd 'test -f /ready'")
		}
	case *api.HealthCheck_Http:
		path := p.Http.GetPath()
		if _, err := url.ParseRequestURI(path); err != nil || !strings.HasPrefix(path, "/") {
			return invalid(healthField+".http.path", "invalid health check path %q: give a URL path such as /healthz", path)
		}
		return validatePort(healthField+".http.port", "the HTTP health check", p.Http.GetPort())
	case *api.HealthCheck_Tcp:
		return validatePort(healthField+".tcp.port", "the TCP health check", p.Tcp.GetPort())
	}
	return nil
}

func validatePort(field, what string, port uint32) error {
	if port == 0 || port > 65535 {
		return invalid(field, "%s needs a port from 1 to 65535, not %d", what, port)
	}
	return nil
}
