package spec

import (
	"strings"
	"testing"

	"github.com/warren-project/warren/api"
)

func TestParsePublish(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "8080:80", want: "8080->80/tcp"},
		{in: "53:5353/udp", want: "53->5353/udp"},
		{in: "mode=host,published=8080,target=80", want: "8080->80/tcp (host)"},
		{in: "published=9000,target=90,protocol=udp,mode=ingress", want: "9000->90/udp"},
		{in: "8080", err: "PUBLISHED:TARGET"},
		{in: "0:80", err: "published port"},
		{in: "8080:70000", err: "target port"},
		{in: "mode=bridge,published=1,target=2", err: "use ingress or host"},
		{in: "published=1", err: "both published= and target="},
		{in: "published=1,target=2,color=red", err: "unknown field"},
	} {
		p, err := ParsePublish(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePublish(%q) = %v, want error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || FormatPort(p) != tc.want {
			t.Errorf("ParsePublish(%q) = %v %v, want %s", tc.in, FormatPort(p), err, tc.want)
		}
	}
}

func TestValidateEndpoint(t *testing.T) {
	spec := func(network string, ports ...*api.PortConfig) *api.ServiceSpec {
		return &api.ServiceSpec{
			Name:     "web",
			Task:     &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox", Network: network}},
			Endpoint: &api.EndpointSpec{Ports: ports},
		}
	}
	p := func(pub, target uint32, proto string) *api.PortConfig {
		return &api.PortConfig{PublishedPort: pub, TargetPort: target, Protocol: proto}
	}
	for _, tc := range []struct {
		name string
		s    *api.ServiceSpec
		err  string
	}{
		{"ok", spec("", p(80, 8080, "tcp"), p(80, 8080, "udp")), ""},
		{"twice", spec("", p(80, 8080, "tcp"), p(80, 90, "tcp")), "published twice"},
		{"host network", spec("host", p(80, 8080, "tcp")), "host network cannot publish"},
		{"protocol", spec("", p(80, 8080, "sctp")), "unknown protocol"},
		{"no target", spec("", p(80, 0, "tcp")), "target"},
		{"unknown network", spec("bridge"), "unknown network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateServiceSpec(tc.s)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("got %v, want %q", err, tc.err)
			}
		})
	}
}
