package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/pkg/client"
	"github.com/warren-project/warren/pkg/client/clienttest"
)

// result is what one run of the CLI printed and returned.
type result struct {
	out, err string
	code     int
}

// warren runs the CLI in-process against the manager at host.
func warren(t *testing.T, host string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return warrenCtx(ctx, t, "warren", host, args...)
}

func warrenCtx(ctx context.Context, t *testing.T, argv0, host string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	argv := append([]string{argv0, "-H", host}, args...)
	code := run(ctx, argv, strings.NewReader(""), &out, &errOut, func(c *cli) {
		c.clientOpts = []client.Option{client.WithPollWait(2 * time.Second)}
	})
	return result{out: out.String(), err: errOut.String(), code: code}
}

// fakeManager starts a fake manager whose tasks move one state per 5 ms.
func fakeManager(t *testing.T) (*clienttest.Fake, string) {
	fake := clienttest.New()
	host := clienttest.Start(t, fake)
	fake.AutoStep(t, 5*time.Millisecond)
	return fake, host
}

func (r result) wantOK(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit code %d; stdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	return r
}

// wantError checks for exit code 1 and one "Error: " message containing want.
func (r result) wantError(t *testing.T, want string) {
	t.Helper()
	if r.code != 1 || !strings.HasPrefix(r.err, "Error: ") || !strings.Contains(r.err, want) {
		t.Fatalf("exit code %d, stderr %q; want exit code 1 and an error containing %q", r.code, r.err, want)
	}
}

func TestVersion(t *testing.T) {
	_, host := fakeManager(t)
	r := warren(t, host, "version").wantOK(t)
	for _, want := range []string{"Client:", " Version:", "Server:", "1.2.3-fake", "abc1234"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("version output lacks %q:\n%s", want, r.out)
		}
	}
	r = warren(t, host, "version", "--format", "{{.Server.Version}}").wantOK(t)
	if r.out != "1.2.3-fake\n" {
		t.Errorf("version template output %q; want the server version", r.out)
	}
}

func TestVersionWithoutServer(t *testing.T) {
	host := "unix://" + t.TempDir() + "/none.sock"
	r := warren(t, host, "version")
	r.wantError(t, "cannot reach the Warren manager at "+host)
	if !strings.Contains(r.out, "Client:") || strings.Contains(r.out, "Server:") {
		t.Fatalf("output %q: want the client part only", r.out)
	}
}

func TestWrnAlias(t *testing.T) {
	_, host := fakeManager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	warrenCtx(ctx, t, "/usr/local/bin/wrn", host, "version").wantOK(t)
	r := warrenCtx(ctx, t, "/usr/local/bin/wrn", host, "service", "create", "web", "--bogus")
	r.wantError(t, "unknown flag: --bogus\nSee 'wrn service create --help'.")
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"service", "create", "web", "--image", "nginx", "--bogus"}, "unknown flag: --bogus\nSee 'warren service create --help'."},
		{"missing argument", []string{"service", "ps"}, `"warren service ps" requires exactly 1 argument (SERVICE), not 0`},
		{"bad format", []string{"service", "ls", "--format", "xml"}, `invalid --format "xml"`},
		{"bad log level", []string{"--log-level", "loud", "version"}, `invalid --log-level "loud"`},
		{"bad scale", []string{"service", "scale", "web=many"}, `invalid scale "web=many": write SERVICE=REPLICAS`},
		{"update without changes", []string{"service", "update", "web", "-d"}, "nothing to update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, host := fakeManager(t)
			warren(t, host, tt.args...).wantError(t, tt.want)
			if calls := fake.Calls(); len(calls) != 0 {
				t.Fatalf("the manager got calls %v; want none for bad input", calls)
			}
		})
	}
}
