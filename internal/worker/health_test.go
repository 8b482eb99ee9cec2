package worker

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
)

func TestResolveHealth(t *testing.T) {
	sec := func(n int) *durationpb.Duration { return durationpb.New(time.Duration(n) * time.Second) }
	shell := &runtime.Healthcheck{Test: []string{"CMD-SHELL", "wget -q -O- localhost"}, Interval: 5 * time.Second, Retries: 7, StartInterval: 2 * time.Second}
	cases := []struct {
		name  string
		spec  *api.HealthCheck
		image *runtime.Healthcheck
		want  *healthCheck // nil: no check
	}{
		{"none at all", nil, nil, nil},
		{"image NONE", nil, &runtime.Healthcheck{Test: []string{"NONE"}}, nil},
		{"image test without a command", nil, &runtime.Healthcheck{Test: []string{"CMD"}}, nil},
		{"disabled ignores the image", &api.HealthCheck{Disabled: true}, shell, nil},
		{"timings alone are no check", &api.HealthCheck{Interval: sec(1)}, nil, nil},
		{"exec string runs under sh -c, with defaults",
			&api.HealthCheck{Probe: &api.HealthCheck_Exec{Exec: &api.HealthExec{Command: []string{"test -f /ok"}}}}, nil,
			&healthCheck{kind: probeExec, command: []string{"/bin/sh", "-c", "test -f /ok"}, interval: 30 * time.Second, timeout: 30 * time.Second, startInterval: time.Second, retries: 3}},
		{"exec argv runs as is",
			&api.HealthCheck{Probe: &api.HealthCheck_Exec{Exec: &api.HealthExec{Command: []string{"test", "-f", "/ok"}}}}, nil,
			&healthCheck{kind: probeExec, command: []string{"test", "-f", "/ok"}, interval: 30 * time.Second, timeout: 30 * time.Second, startInterval: time.Second, retries: 3}},
		{"http, default path",
			&api.HealthCheck{Probe: &api.HealthCheck_Http{Http: &api.HealthHTTP{Port: 8080}}, Interval: sec(2), Timeout: sec(1), Retries: 5, StartPeriod: sec(10)}, nil,
			&healthCheck{kind: probeHTTP, path: "/", port: 8080, interval: 2 * time.Second, timeout: time.Second, startPeriod: 10 * time.Second, startInterval: time.Second, retries: 5}},
		{"tcp",
			&api.HealthCheck{Probe: &api.HealthCheck_Tcp{Tcp: &api.HealthTCP{Port: 5432}}}, nil,
			&healthCheck{kind: probeTCP, port: 5432, interval: 30 * time.Second, timeout: 30 * time.Second, startInterval: time.Second, retries: 3}},
		{"image CMD-SHELL", nil, shell,
			&healthCheck{kind: probeExec, command: []string{"/bin/sh", "-c", "wget -q -O- localhost"}, interval: 5 * time.Second, timeout: 30 * time.Second, startInterval: 2 * time.Second, retries: 7}},
		{"image CMD", nil, &runtime.Healthcheck{Test: []string{"CMD", "/bin/check", "--quick"}, Timeout: 3 * time.Second},
			&healthCheck{kind: probeExec, command: []string{"/bin/check", "--quick"}, interval: 30 * time.Second, timeout: 3 * time.Second, startInterval: time.Second, retries: 3}},
		{"spec timings over the image's test", &api.HealthCheck{Interval: sec(1), Retries: 2}, shell,
			&healthCheck{kind: probeExec, command: []string{"/bin/sh", "-c", "wget -q -O- localhost"}, interval: time.Second, timeout: 30 * time.Second, startInterval: 2 * time.Second, retries: 2}},
		{"spec probe keeps the image's timings", &api.HealthCheck{Probe: &api.HealthCheck_Tcp{Tcp: &api.HealthTCP{Port: 80}}}, shell,
			&healthCheck{kind: probeTCP, port: 80, interval: 5 * time.Second, timeout: 30 * time.Second, startInterval: 2 * time.Second, retries: 7}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := resolveHealth(c.spec, c.image)
			if (got == nil) != (c.want == nil) {
				t.Fatalf("resolveHealth = %+v, want %+v", got, c.want)
			}
			if got == nil {
				return
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("resolveHealth = %+v, want %+v", *got, *c.want)
			}
		})
	}
}

// A sequence of probe results and the health after each.
func TestHealthObserve(t *testing.T) {
	type after struct {
		ok        bool
		at        time.Duration // since the container started
		state     api.Health_State
		streak    uint32
		unhealthy bool
	}
	cases := []struct {
		name        string
		startPeriod time.Duration
		steps       []after
	}{
		{"healthy at the first success", 0, []after{
			{true, time.Second, healthHealthy, 0, false},
		}},
		{"failures count from the start without a start period", 0, []after{
			{false, 1 * time.Second, healthStarting, 1, false},
			{false, 2 * time.Second, healthStarting, 2, false},
			{false, 3 * time.Second, healthUnhealthy, 3, true},
		}},
		{"a success resets the streak", 0, []after{
			{true, 1 * time.Second, healthHealthy, 0, false},
			{false, 2 * time.Second, healthHealthy, 1, false},
			{false, 3 * time.Second, healthHealthy, 2, false},
			{true, 4 * time.Second, healthHealthy, 0, false},
			{false, 5 * time.Second, healthHealthy, 1, false},
			{false, 6 * time.Second, healthHealthy, 2, false},
			{false, 7 * time.Second, healthUnhealthy, 3, true},
		}},
		{"failures in the start period do not count", 10 * time.Second, []after{
			{false, 1 * time.Second, healthStarting, 0, false},
			{false, 5 * time.Second, healthStarting, 0, false},
			{false, 9 * time.Second, healthStarting, 0, false},
			{false, 10 * time.Second, healthStarting, 1, false},
			{false, 11 * time.Second, healthStarting, 2, false},
			{false, 12 * time.Second, healthUnhealthy, 3, true},
		}},
		{"a success ends the start period", 10 * time.Second, []after{
			{true, 1 * time.Second, healthHealthy, 0, false},
			{false, 2 * time.Second, healthHealthy, 1, false},
			{false, 3 * time.Second, healthHealthy, 2, false},
			{false, 4 * time.Second, healthUnhealthy, 3, true},
		}},
	}
	started := time.Unix(1000, 0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hc := &healthCheck{kind: probeTCP, retries: 3, startPeriod: c.startPeriod}
			h := &api.Health{State: healthStarting}
			for i, s := range c.steps {
				before := h
				var unhealthy bool
				h, unhealthy = hc.observe(h, probeResult{ok: s.ok, output: "out", at: started.Add(s.at)}, started)
				if h.GetState() != s.state || h.GetFailingStreak() != s.streak || unhealthy != s.unhealthy {
					t.Fatalf("after probe %d: %v streak %d unhealthy %v, want %v streak %d unhealthy %v",
						i+1, h.GetState(), h.GetFailingStreak(), unhealthy, s.state, s.streak, s.unhealthy)
				}
				if h == before || h.GetLastOutput() != "out" || !h.GetLastProbe().AsTime().Equal(started.Add(s.at)) {
					t.Fatalf("after probe %d: health %v, want a new value with the probe's output and time", i+1, h)
				}
			}
		})
	}
}

func TestNextProbe(t *testing.T) {
	started := time.Unix(1000, 0)
	hc := &healthCheck{interval: 30 * time.Second, startInterval: time.Second, startPeriod: 5 * time.Second}
	cases := []struct {
		name  string
		state api.Health_State
		last  time.Duration // since start; -1 for none yet
		want  time.Duration
	}{
		{"first probe in the start period", healthStarting, -1, time.Second},
		{"next probe in the start period", healthStarting, 3 * time.Second, 4 * time.Second},
		{"after the start period", healthStarting, 5 * time.Second, 35 * time.Second},
		{"healthy inside the start period", healthHealthy, 2 * time.Second, 32 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hr := &healthRun{startedAt: started, health: &api.Health{State: c.state}}
			if c.last >= 0 {
				hr.lastProbe = started.Add(c.last)
			}
			if got := hc.nextProbe(hr).Sub(started); got != c.want {
				t.Fatalf("next probe at start+%v, want start+%v", got, c.want)
			}
		})
	}
	noPeriod := &healthCheck{interval: 30 * time.Second, startInterval: time.Second}
	if got := noPeriod.nextProbe(&healthRun{startedAt: started, health: &api.Health{State: healthStarting}}).Sub(started); got != 30*time.Second {
		t.Fatalf("without a start period the first probe is at start+%v, want an interval after the start", got)
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", 1000) // 2000 bytes
	got := truncate(long, maxHealthOutput)
	if len(got) > maxHealthOutput || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éé") || strings.ContainsRune(got, '\uFFFD') {
		t.Fatalf("truncate gave %d bytes ending %q", len(got), got[len(got)-8:])
	}
	if truncate("short", 10) != "short" {
		t.Fatal("a short string was changed")
	}
}

func TestProbeHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte("fine"))
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/slow":
			<-r.Context().Done()
		default:
			http.Error(w, "no such page", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	cases := []struct {
		name, addr, path string
		timeout          time.Duration
		ok               bool
		reason, output   string
	}{
		{"2xx is healthy", addr, "/ok", time.Minute, true, "", "GET http://" + addr + "/ok: HTTP 200 OK"},
		{"3xx is healthy and not followed", addr, "/moved", time.Minute, true, "", "HTTP 302 Found"},
		{"4xx is not", addr, "/missing", time.Minute, false, "HTTP 404 Not Found", "no such page"},
		{"nothing listening", closedAddr(t), "/", time.Minute, false, "connection refused", "connection refused"},
		{"slow answer times out", addr, "/slow", 50 * time.Millisecond, false, "timed out after 50ms", "deadline exceeded"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := probeWith(t, &healthCheck{kind: probeHTTP, path: c.path, port: port(t, c.addr), timeout: c.timeout}, nil)
			if r.ok != c.ok || r.reason != c.reason || !strings.Contains(r.output, c.output) {
				t.Fatalf("probe = %+v, want ok %v, reason %q, output with %q", r, c.ok, c.reason, c.output)
			}
		})
	}
}

func TestProbeTCP(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	r := probeWith(t, &healthCheck{kind: probeTCP, port: port(t, lis.Addr().String()), timeout: time.Minute}, nil)
	if !r.ok || r.output != "connected to "+lis.Addr().String() {
		t.Fatalf("probe of a listener = %+v, want healthy", r)
	}
	r = probeWith(t, &healthCheck{kind: probeTCP, port: port(t, closedAddr(t)), timeout: time.Minute}, nil)
	if r.ok || r.reason != "connection refused" {
		t.Fatalf("probe of a closed port = %+v, want connection refused", r)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func port(t *testing.T, addr string) uint32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := net.LookupPort("tcp", p)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}

// probeWith runs one probe of hc for task t1 on rt (nil: a fake with no
// containers, enough for network probes).
func probeWith(t *testing.T, hc *healthCheck, rt runtime.Executor) probeResult {
	t.Helper()
	x := &taskExec{rt: rt, now: time.Now}
	return x.probe(context.Background(), testTask("t1"), hc)
}
