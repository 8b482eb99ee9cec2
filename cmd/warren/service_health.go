package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
)

// healthOpts are the health check flags of `service create` and `update`.
type healthOpts struct {
	cmd, httpPath                  string
	port, tcp, retries             uint32
	interval, timeout, startPeriod time.Duration
	none                           bool
}

var (
	healthProbeFlags  = []string{"health-cmd", "health-http", "health-tcp"}
	healthTimingFlags = []string{"health-interval", "health-timeout", "health-retries", "health-start-period"}
)

func (h *healthOpts) addFlags(f *pflag.FlagSet) {
	f.StringVar(&h.cmd, "health-cmd", "", "check health by running this command in the container (by /bin/sh -c); exit 0 is healthy")
	f.StringVar(&h.httpPath, "health-http", "", "check health by GETting this URL path on the container's --health-port; 2xx or 3xx is healthy")
	f.Uint32Var(&h.port, "health-port", 0, "container port for --health-http")
	f.Uint32Var(&h.tcp, "health-tcp", 0, "check health by connecting to this container port")
	f.DurationVar(&h.interval, "health-interval", 0, "time between two health checks (default 30s)")
	f.DurationVar(&h.timeout, "health-timeout", 0, "time a health check may take (default 30s)")
	f.Uint32Var(&h.retries, "health-retries", 0, "consecutive failed checks that make a task unhealthy (default 3)")
	f.DurationVar(&h.startPeriod, "health-start-period", 0, "time after a start in which failed checks do not count (default 0s)")
	f.BoolVar(&h.none, "no-healthcheck", false, "check no health, not even the image's HEALTHCHECK")
}

// apply returns check changed by the flags given: a probe flag replaces
// the probe, a timing flag that timing, and --no-healthcheck all of it.
// Timings without a probe apply to the image's HEALTHCHECK. With no flag
// given, check comes back as is.
func (h *healthOpts) apply(f *pflag.FlagSet, check *api.HealthCheck) (*api.HealthCheck, error) {
	probes, timings := changed(f, healthProbeFlags...), changed(f, healthTimingFlags...)
	port := f.Changed("health-port")
	switch {
	case h.none && (len(probes) > 0 || len(timings) > 0 || port):
		others := append(append(probes, timings...), "health-port")
		return nil, fmt.Errorf("--no-healthcheck turns health checks off: it cannot be given with --%s", others[0])
	case h.none:
		return &api.HealthCheck{Disabled: true}, nil
	case len(probes) > 1:
		return nil, fmt.Errorf("give one health check, not both --%s and --%s", probes[0], probes[1])
	case f.Changed("health-http") && !port && check.GetHttp() == nil:
		return nil, fmt.Errorf("--health-http needs --health-port: the container port to GET %s on", h.httpPath)
	case port && !f.Changed("health-http") && check.GetHttp() == nil:
		return nil, fmt.Errorf("--health-port goes with --health-http")
	case len(probes) == 0 && len(timings) == 0 && !port:
		return check, nil
	}
	out := &api.HealthCheck{}
	if check != nil && !check.GetDisabled() {
		out = proto.Clone(check).(*api.HealthCheck)
	}
	h.setProbe(f, out)
	h.setTimings(f, out)
	return out, nil
}

func (h *healthOpts) setProbe(f *pflag.FlagSet, out *api.HealthCheck) {
	port := out.GetHttp().GetPort()
	if f.Changed("health-port") {
		port = h.port
	}
	switch {
	case f.Changed("health-cmd"):
		out.Probe = &api.HealthCheck_Exec{Exec: &api.HealthExec{Command: []string{h.cmd}}}
	case f.Changed("health-http"):
		out.Probe = &api.HealthCheck_Http{Http: &api.HealthHTTP{Path: h.httpPath, Port: port}}
	case f.Changed("health-tcp"):
		out.Probe = &api.HealthCheck_Tcp{Tcp: &api.HealthTCP{Port: h.tcp}}
	case f.Changed("health-port"): // a new port for the HTTP check in force
		out.Probe = &api.HealthCheck_Http{Http: &api.HealthHTTP{Path: out.GetHttp().GetPath(), Port: port}}
	}
}

func (h *healthOpts) setTimings(f *pflag.FlagSet, out *api.HealthCheck) {
	if f.Changed("health-interval") {
		out.Interval = durationpb.New(h.interval)
	}
	if f.Changed("health-timeout") {
		out.Timeout = durationpb.New(h.timeout)
	}
	if f.Changed("health-start-period") {
		out.StartPeriod = durationpb.New(h.startPeriod)
	}
	if f.Changed("health-retries") {
		out.Retries = h.retries
	}
}

// changed returns those of the named flags that were given, in order.
func changed(f *pflag.FlagSet, names ...string) []string {
	var out []string
	for _, n := range names {
		if f.Changed(n) {
			out = append(out, n)
		}
	}
	return out
}

// healthNote is how `service ps` shows a running task's health, as Docker
// shows a container's: "healthy", "unhealthy", "health: starting".
func healthNote(h *api.Health) string {
	switch h.GetState() {
	case api.Health_STATE_STARTING:
		return "health: starting"
	case api.Health_STATE_HEALTHY:
		return "healthy"
	case api.Health_STATE_UNHEALTHY:
		return "unhealthy"
	}
	return ""
}
