package spec

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
)

func TestValidateHealthCheck(t *testing.T) {
	exec := func(cmd ...string) *api.HealthCheck {
		return &api.HealthCheck{Probe: &api.HealthCheck_Exec{Exec: &api.HealthExec{Command: cmd}}}
	}
	httpCheck := func(path string, port uint32) *api.HealthCheck {
		return &api.HealthCheck{Probe: &api.HealthCheck_Http{Http: &api.HealthHTTP{Path: path, Port: port}}}
	}
	tcp := func(port uint32) *api.HealthCheck {
		return &api.HealthCheck{Probe: &api.HealthCheck_Tcp{Tcp: &api.HealthTCP{Port: port}}}
	}
	with := func(h *api.HealthCheck, f func(*api.HealthCheck)) *api.HealthCheck { f(h); return h }
	tests := []struct {
		name    string
		check   *api.HealthCheck
		wantErr string
	}{
		{"none", nil, ""},
		{"exec string", exec("test -f /ready"), ""},
		{"exec argv", exec("/bin/check", "--quick"), ""},
		{"http", httpCheck("/healthz?full=1", 8080), ""},
		{"tcp", tcp(5432), ""},
		{"timings over the image's check", &api.HealthCheck{Interval: durationpb.New(time.Second), Retries: 5}, ""},
		{"all timings", with(tcp(80), func(h *api.HealthCheck) {
			h.Interval, h.Timeout, h.StartPeriod, h.Retries = durationpb.New(time.Second), durationpb.New(time.Second), durationpb.New(time.Minute), 3
		}), ""},
		{"disabled", &api.HealthCheck{Disabled: true}, ""},
		{"disabled with a probe", with(tcp(80), func(h *api.HealthCheck) { h.Disabled = true }), "--no-healthcheck turns health checks off"},
		{"disabled with timings", &api.HealthCheck{Disabled: true, Retries: 2}, "--no-healthcheck turns health checks off"},
		{"empty command", exec(), "the health check command is empty"},
		{"blank command", exec(" "), "the health check command is empty"},
		{"http without port", httpCheck("/", 0), "the HTTP health check needs a port from 1 to 65535, not 0"},
		{"http port too big", httpCheck("/", 70000), "not 70000"},
		{"http relative path", httpCheck("healthz", 80), `invalid health check path "healthz"`},
		{"http empty path", httpCheck("", 80), `invalid health check path ""`},
		{"tcp without port", tcp(0), "the TCP health check needs a port"},
		{"negative interval", with(tcp(80), func(h *api.HealthCheck) { h.Interval = durationpb.New(-time.Second) }), "the health check interval is negative"},
		{"tiny interval", with(tcp(80), func(h *api.HealthCheck) { h.Interval = durationpb.New(time.Microsecond) }), "the health check interval (1µs) is too short"},
		{"tiny timeout", with(tcp(80), func(h *api.HealthCheck) { h.Timeout = durationpb.New(time.Nanosecond) }), "the health check timeout (1ns) is too short"},
		{"negative start period", with(tcp(80), func(h *api.HealthCheck) { h.StartPeriod = durationpb.New(-time.Second) }), "the health check start period is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			s.Task.Container.Healthcheck = tt.check
			checkErr(t, ValidateServiceSpec(s), tt.wantErr)
		})
	}
	s := validSpec()
	s.Task.Container.Healthcheck = tcp(0)
	var e *Error
	if err := ValidateServiceSpec(s); !errors.As(err, &e) || e.Field != "task.container.healthcheck.tcp.port" {
		t.Fatalf("error %v: want an *Error with field task.container.healthcheck.tcp.port", err)
	}
}
