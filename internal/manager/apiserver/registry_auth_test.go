package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/security/seal"
	"github.com/warren-project/warren/internal/state"
)

const (
	privImage = "registry.example.com:5000/team/app:1"
	password  = "pw-6f1d2a-never-stored"
)

// privateImages knows images of a registry that wants credentials: it
// refuses a check without the right ones, and records what it was given.
type privateImages struct {
	mu   sync.Mutex
	want *api.RegistryAuth
	got  []*api.RegistryAuth
}

func (p *privateImages) NormalizeRef(ref string) (string, error) { return runtime.NormalizeRef(ref) }
func (p *privateImages) CheckImage(_ context.Context, _ string, auth *api.RegistryAuth) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, proto.Clone(auth).(*api.RegistryAuth))
	if auth.GetUsername() != p.want.GetUsername() || auth.GetPassword() != p.want.GetPassword() {
		return fmt.Errorf("401 Unauthorized: %w", ErrRegistryUnauthorized)
	}
	return nil
}
func (p *privateImages) ImportImage(context.Context, io.Reader, []string) ([]*api.Image, error) {
	return nil, nil
}
func (p *privateImages) ListImages(context.Context) ([]*api.Image, error) { return nil, nil }

func (p *privateImages) last() *api.RegistryAuth {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got[len(p.got)-1]
}

func newAuthServer(t *testing.T) (*Server, *state.MemoryStore, *seal.Sealer, *privateImages) {
	t.Helper()
	sealer, err := seal.LoadOrCreate(filepath.Join(t.TempDir(), "keys", "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	store := state.NewTestStore()
	images := &privateImages{want: &api.RegistryAuth{Username: "alice", Password: password}}
	return New(Config{Store: store, Images: images, Sealer: sealer}), store, sealer, images
}

func privSpec(name string) *api.ServiceSpec {
	sp := svcSpec(name, 1)
	sp.Task.Container.Image = privImage
	return sp
}

func alice() *api.RegistryAuth { return &api.RegistryAuth{Username: "alice", Password: password} }

// stored returns the service as the store holds it, and its wire form.
func stored(t *testing.T, store *state.MemoryStore, name string) (*api.Service, []byte) {
	t.Helper()
	var svc *api.Service
	store.View(func(tx state.ReadTx) { svc = tx.GetServiceByName(name) })
	if svc == nil {
		t.Fatalf("service %s not stored", name)
	}
	wire, err := proto.Marshal(store.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	return svc, wire
}

func openAuth(t *testing.T, sealer *seal.Sealer, svc *api.Service) *api.RegistryAuth {
	t.Helper()
	auth := &api.RegistryAuth{}
	if err := sealer.OpenMessage(svc.GetSealedRegistryAuth(), []byte(svc.GetId()), auth); err != nil {
		t.Fatalf("open the stored credentials: %v", err)
	}
	return auth
}

func TestCreateServiceSealsRegistryAuth(t *testing.T) {
	s, store, sealer, images := newAuthServer(t)
	ctx := context.Background()
	resp, err := s.CreateService(ctx, &api.CreateServiceRequest{Spec: privSpec("app"), RegistryAuth: alice()})
	if err != nil {
		t.Fatal(err)
	}
	if got := images.last(); got.GetPassword() != password || got.GetServer() != "registry.example.com:5000" {
		t.Fatalf("the image check got credentials %v, want alice's for registry.example.com:5000", got)
	}
	if len(resp.GetService().GetSealedRegistryAuth()) != 0 {
		t.Fatal("CreateService returned the sealed credentials")
	}
	svc, wire := stored(t, store, "app")
	if bytes.Contains(wire, []byte(password)) || bytes.Contains(wire, []byte("alice")) {
		t.Fatal("the state holds the registry credentials in plain text")
	}
	if len(svc.GetSealedRegistryAuth()) == 0 {
		t.Fatal("the state holds no sealed credentials")
	}
	want := &api.RegistryAuth{Server: "registry.example.com:5000", Username: "alice", Password: password}
	if got := openAuth(t, sealer, svc); !proto.Equal(got, want) {
		t.Fatalf("sealed credentials open to %v, want %v", got, want)
	}
	if err := sealer.OpenMessage(svc.GetSealedRegistryAuth(), []byte("another-service"), &api.RegistryAuth{}); err == nil {
		t.Fatal("the sealed credentials open for another service")
	}

	get, err := s.GetService(ctx, &api.GetServiceRequest{Service: "app"})
	if err != nil || len(get.GetService().GetSealedRegistryAuth()) != 0 {
		t.Fatalf("GetService = %v, %v; want no sealed credentials", get, err)
	}
	list, err := s.ListServices(ctx, &api.ListServicesRequest{})
	if err != nil || len(list.GetServices()) != 1 || len(list.GetServices()[0].GetSealedRegistryAuth()) != 0 {
		t.Fatalf("ListServices = %v, %v; want one service without sealed credentials", list, err)
	}
}

func TestCreateServiceRefusesBadRegistryAuth(t *testing.T) {
	cases := []struct {
		name   string
		auth   *api.RegistryAuth
		sealer bool
		code   codes.Code
		want   string
	}{
		{"no credentials for a private registry", nil, true, codes.InvalidArgument, "--registry-username"},
		{"wrong password", &api.RegistryAuth{Username: "alice", Password: "nope"}, true, codes.InvalidArgument, "credentials of user alice"},
		{"no password", &api.RegistryAuth{Username: "alice"}, true, codes.InvalidArgument, "both a username and a password"},
		{"no username", &api.RegistryAuth{Password: password}, true, codes.InvalidArgument, "both a username and a password"},
		{"another registry", &api.RegistryAuth{Server: "docker.io", Username: "alice", Password: password}, true, codes.InvalidArgument, "for docker.io, but image"},
		{"no data key", alice(), false, codes.FailedPrecondition, "no data key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, store, _, _ := newAuthServer(t)
			if !c.sealer {
				s.cfg.Sealer = nil
			}
			before := store.Index()
			_, err := s.CreateService(context.Background(), &api.CreateServiceRequest{Spec: privSpec("app"), RegistryAuth: c.auth})
			if status.Code(err) != c.code || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %v mentioning %q", err, c.code, c.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("the error shows the password: %v", err)
			}
			if store.Index() != before {
				t.Fatal("a refused create changed the state")
			}
		})
	}
}

func TestRegistryServerForms(t *testing.T) {
	for _, server := range []string{"", "registry.example.com:5000", "https://registry.example.com:5000/v2/", "REGISTRY.example.com:5000"} {
		t.Run(server, func(t *testing.T) {
			got, err := checkRegistryAuth(&api.RegistryAuth{Server: server, Username: "u", Password: "p"}, privImage)
			if err != nil || got.GetServer() != "registry.example.com:5000" {
				t.Fatalf("checkRegistryAuth(%q) = %v, %v", server, got, err)
			}
		})
	}
	for _, server := range []string{"https://index.docker.io/v1/", "registry-1.docker.io", "docker.io"} {
		t.Run(server, func(t *testing.T) {
			got, err := checkRegistryAuth(&api.RegistryAuth{Server: server, Username: "u", Password: "p"}, "docker.io/library/busybox:latest")
			if err != nil || got.GetServer() != "docker.io" {
				t.Fatalf("checkRegistryAuth(%q) = %v, %v", server, got, err)
			}
		})
	}
}

func TestUpdateServiceRegistryAuth(t *testing.T) {
	s, store, sealer, images := newAuthServer(t)
	ctx := context.Background()
	if _, err := s.CreateService(ctx, &api.CreateServiceRequest{Spec: privSpec("app"), RegistryAuth: alice()}); err != nil {
		t.Fatal(err)
	}
	update := func(req *api.UpdateServiceRequest) (*api.UpdateServiceResponse, error) {
		req.Service = "app"
		if req.Spec == nil {
			req.Spec = privSpec("app")
		}
		return s.UpdateService(ctx, req)
	}
	first, _ := stored(t, store, "app")

	// Neither new credentials nor a clear: they are kept, and no rollout.
	resp, err := update(&api.UpdateServiceRequest{Spec: func() *api.ServiceSpec { sp := privSpec("app"); sp.Labels = map[string]string{"a": "b"}; return sp }()})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetService().GetSealedRegistryAuth()) != 0 {
		t.Fatal("UpdateService returned the sealed credentials")
	}
	kept, _ := stored(t, store, "app")
	if !bytes.Equal(kept.GetSealedRegistryAuth(), first.GetSealedRegistryAuth()) {
		t.Fatal("an update without credentials changed them")
	}

	// New credentials replace them, and are checked against the registry.
	images.want = &api.RegistryAuth{Username: "bob", Password: "pw-bob-2"}
	if _, err := update(&api.UpdateServiceRequest{RegistryAuth: &api.RegistryAuth{Username: "bob", Password: "wrong"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("update with refused credentials = %v, want InvalidArgument", err)
	}
	if _, err := update(&api.UpdateServiceRequest{RegistryAuth: &api.RegistryAuth{Username: "bob", Password: "pw-bob-2"}}); err != nil {
		t.Fatal(err)
	}
	replaced, wire := stored(t, store, "app")
	if got := openAuth(t, sealer, replaced); got.GetUsername() != "bob" || replaced.GetSpecVersion() != first.GetSpecVersion() {
		t.Fatalf("after replacing: credentials of %q at spec version %d; want bob's, and no new spec version", got.GetUsername(), replaced.GetSpecVersion())
	}
	if bytes.Contains(wire, []byte("pw-bob-2")) {
		t.Fatal("the state holds the new password in plain text")
	}

	// A new image on another registry cannot keep credentials for the old one.
	other := privSpec("app")
	other.Task.Container.Image = "other.example.com/app:2"
	if _, err := update(&api.UpdateServiceRequest{Spec: other}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "for registry.example.com:5000") {
		t.Fatalf("image on another registry with kept credentials = %v, want InvalidArgument", err)
	}
	if _, err := update(&api.UpdateServiceRequest{RegistryAuth: alice(), ClearRegistryAuth: true}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("credentials and a clear at once = %v, want InvalidArgument", err)
	}

	// A clear removes them.
	if _, err := update(&api.UpdateServiceRequest{ClearRegistryAuth: true}); err != nil {
		t.Fatal(err)
	}
	if cleared, _ := stored(t, store, "app"); len(cleared.GetSealedRegistryAuth()) != 0 {
		t.Fatal("credentials kept after a clear")
	}
}
