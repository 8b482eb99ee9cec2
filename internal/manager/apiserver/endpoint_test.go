package apiserver

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
)

func withPorts(sp *api.ServiceSpec, ports ...*api.PortConfig) *api.ServiceSpec {
	sp.Endpoint = &api.EndpointSpec{Ports: ports}
	return sp
}

// A service on the overlay gets a VIP of the pool, kept across updates and
// dropped for host networking; a published port held by another service
// is refused, with nothing stored; host-mode ports allow one task per node.
func TestServiceEndpoints(t *testing.T) {
	s, _ := newServer(t)
	ctx := context.Background()
	tcp := func(pub, target uint32) *api.PortConfig {
		return &api.PortConfig{Protocol: "tcp", PublishedPort: pub, TargetPort: target}
	}
	web, err := s.CreateService(ctx, &api.CreateServiceRequest{Spec: withPorts(svcSpec("web", 2), tcp(8080, 80))})
	if err != nil {
		t.Fatal(err)
	}
	vip := web.GetService().GetEndpoint().GetVip()
	if !strings.HasPrefix(vip, "10.201.") || len(web.GetService().GetEndpoint().GetPorts()) != 1 {
		t.Fatalf("endpoint %v: want a VIP of 10.201.0.0/16 and the published port", web.GetService().GetEndpoint())
	}

	_, err = s.CreateService(ctx, &api.CreateServiceRequest{Spec: withPorts(svcSpec("api", 1), tcp(8080, 9000))})
	if status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), "port 8080/tcp is already published by service web") {
		t.Fatalf("clashing port: %v", err)
	}
	if _, err := s.GetService(ctx, &api.GetServiceRequest{Service: "api"}); status.Code(err) != codes.NotFound {
		t.Fatalf("the refused service was stored: %v", err)
	}
	other, err := s.CreateService(ctx, &api.CreateServiceRequest{Spec: withPorts(svcSpec("api", 1), &api.PortConfig{Protocol: "udp", PublishedPort: 8080, TargetPort: 53, PublishMode: api.PublishMode_PUBLISH_MODE_HOST})})
	if err != nil {
		t.Fatalf("8080/udp beside 8080/tcp: %v", err)
	}
	if v := other.GetService().GetEndpoint().GetVip(); v == vip || v == "" {
		t.Fatalf("second VIP %q (first %q): want another one", v, vip)
	}
	if other.GetService().GetSpec().GetTask().GetPlacement().GetMaxReplicasPerNode() != 1 {
		t.Fatalf("host-mode port without one task per node: %v", other.GetService().GetSpec().GetTask().GetPlacement())
	}

	sp := web.GetService().GetSpec()
	sp.Task.Container.Env = []string{"V=2"}
	up, err := s.UpdateService(ctx, &api.UpdateServiceRequest{Service: "web", Spec: sp})
	if err != nil || up.GetService().GetEndpoint().GetVip() != vip {
		t.Fatalf("update: VIP %q (%v); want the VIP kept", up.GetService().GetEndpoint().GetVip(), err)
	}
	host := withPorts(svcSpec("hostnet", 1))
	host.Task.Container.Network = "host"
	h, err := s.CreateService(ctx, &api.CreateServiceRequest{Spec: host})
	if err != nil || h.GetService().GetEndpoint().GetVip() != "" {
		t.Fatalf("host network: endpoint %v (%v); want no VIP", h.GetService().GetEndpoint(), err)
	}
}
