package worker

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
)

// Health check defaults: Docker's, so that an image's HEALTHCHECK means
// here what it means there.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 30 * time.Second
	defaultHealthRetries  = 3
	// defaultHealthStartInterval spaces the probes inside a start period
	// (Docker's --health-start-interval): a task that is given a long start
	// period becomes RUNNING soon after it is ready, not an interval later.
	defaultHealthStartInterval = time.Second
	// maxHealthOutput bounds the probe output a status carries.
	maxHealthOutput = 1024
)

const (
	healthNone      = api.Health_STATE_NONE
	healthStarting  = api.Health_STATE_STARTING
	healthHealthy   = api.Health_STATE_HEALTHY
	healthUnhealthy = api.Health_STATE_UNHEALTHY
)

type probeKind int

const (
	probeExec probeKind = iota + 1 // run command in the container
	probeHTTP                      // GET path on port
	probeTCP                       // connect to port
)

// healthCheck is the check in force for a task, defaults applied.
type healthCheck struct {
	kind          probeKind
	command       []string // probeExec, as run
	path          string   // probeHTTP
	port          uint32   // probeHTTP, probeTCP
	interval      time.Duration
	timeout       time.Duration
	startPeriod   time.Duration
	startInterval time.Duration
	retries       uint32
}

// resolveHealth returns the check of a task whose spec says spec and whose
// image declares img (either may be nil), or nil for none. The two merge
// field by field, as Docker merges `run --health-*` over HEALTHCHECK: the
// spec's probe replaces the image's test, and each timing the spec sets
// replaces the image's. disabled turns both off.
func resolveHealth(spec *api.HealthCheck, img *runtime.Healthcheck) *healthCheck {
	if spec.GetDisabled() {
		return nil
	}
	hc := &healthCheck{}
	if !hc.setProbe(spec) && !hc.setImageTest(img) {
		return nil
	}
	if img == nil {
		img = &runtime.Healthcheck{}
	}
	hc.interval = pickDuration(spec.GetInterval(), img.Interval, defaultHealthInterval)
	hc.timeout = pickDuration(spec.GetTimeout(), img.Timeout, defaultHealthTimeout)
	hc.startPeriod = pickDuration(spec.GetStartPeriod(), img.StartPeriod, 0)
	hc.startInterval = pickDuration(nil, img.StartInterval, defaultHealthStartInterval)
	hc.retries = spec.GetRetries()
	if hc.retries == 0 {
		hc.retries = defaultHealthRetries
		if img.Retries > 0 {
			hc.retries = uint32(img.Retries)
		}
	}
	return hc
}

func (hc *healthCheck) setProbe(spec *api.HealthCheck) bool {
	switch {
	case len(spec.GetExec().GetCommand()) > 0:
		hc.kind, hc.command = probeExec, shellForm(spec.GetExec().GetCommand())
	case spec.GetHttp() != nil:
		hc.kind, hc.path, hc.port = probeHTTP, spec.GetHttp().GetPath(), spec.GetHttp().GetPort()
		if hc.path == "" {
			hc.path = "/"
		}
	case spec.GetTcp() != nil:
		hc.kind, hc.port = probeTCP, spec.GetTcp().GetPort()
	default:
		return false
	}
	return true
}

// setImageTest takes Docker's test forms: ["CMD", arg...], ["CMD-SHELL",
// command]; ["NONE"] or nothing is no check.
func (hc *healthCheck) setImageTest(img *runtime.Healthcheck) bool {
	if img == nil || len(img.Test) < 2 {
		return false
	}
	switch img.Test[0] {
	case "CMD":
		hc.kind, hc.command = probeExec, slices.Clone(img.Test[1:])
	case "CMD-SHELL":
		hc.kind, hc.command = probeExec, []string{"/bin/sh", "-c", strings.Join(img.Test[1:], " ")}
	default:
		return false
	}
	return true
}

// shellForm runs a single-string command by /bin/sh -c, as Docker does.
func shellForm(cmd []string) []string {
	if len(cmd) == 1 {
		return []string{"/bin/sh", "-c", cmd[0]}
	}
	return slices.Clone(cmd)
}

func pickDuration(spec *durationpb.Duration, img, def time.Duration) time.Duration {
	if d := spec.AsDuration(); spec != nil && d > 0 {
		return d
	}
	if img > 0 {
		return img
	}
	return def
}

// probeResult is the outcome of one probe.
type probeResult struct {
	ok     bool
	output string    // for status.health.last_output
	reason string    // why it failed, short: "connection refused"
	at     time.Time // when it started
}

// healthRun is the health of one run of a task's container, kept between
// steps in the runState.
type healthRun struct {
	startedAt time.Time   // when the container process started
	health    *api.Health // as last reported; replaced, never changed in place
	lastProbe time.Time   // zero before the first probe
	// killed is set once the agent found the task unhealthy: the reason
	// for the exit that follows.
	killed string
}

// observe folds probe result r into the health h of a container that
// started at started, returning the new health and whether the task is now
// unhealthy. While a task has not been healthy yet, failures inside the
// start period do not count; one success ends the start period.
func (hc *healthCheck) observe(h *api.Health, r probeResult, started time.Time) (*api.Health, bool) {
	next := proto.Clone(h).(*api.Health)
	next.LastOutput, next.LastProbe = truncate(r.output, maxHealthOutput), timestamppb.New(r.at)
	switch {
	case r.ok:
		next.State, next.FailingStreak = healthHealthy, 0
	case h.GetState() == healthStarting && r.at.Before(started.Add(hc.startPeriod)):
		// A failure in the start period: the app may still be booting.
	default:
		next.FailingStreak++
		if next.FailingStreak >= hc.retries {
			next.State = healthUnhealthy
			return next, true
		}
	}
	return next, false
}

// nextProbe is when the next probe of run hr is due: an interval after the
// last one (or after the start), sooner inside a start period.
func (hc *healthCheck) nextProbe(hr *healthRun) time.Time {
	from := hr.lastProbe
	if from.IsZero() {
		from = hr.startedAt
	}
	gap := hc.interval
	if hr.health.GetState() == healthStarting && from.Before(hr.startedAt.Add(hc.startPeriod)) {
		gap = min(gap, hc.startInterval)
	}
	return from.Add(gap)
}

// unhealthyReason is what a person reads about a task found unhealthy.
func unhealthyReason(h *api.Health, lastFailure string) string {
	return fmt.Sprintf("health check failed %d times: %s", h.GetFailingStreak(), lastFailure)
}

// truncate cuts s to at most n bytes, marking the cut, and keeps it valid
// UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-len("…")], "") + "…"
}
