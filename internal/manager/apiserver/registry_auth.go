package apiserver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

// ErrRegistryUnauthorized marks a CheckImage error where the registry
// refused access: no credentials were given and it wants some, or it
// refused the ones given. The API then tells how to pass credentials.
var ErrRegistryUnauthorized = errors.New("its registry refused access")

// A service's registry credentials are sealed with the cluster's data key,
// bound to the service's ID, into service.sealed_registry_auth. The API
// never returns them: not sealed, not in plain text. The dispatcher opens
// them when it sends a task to its node.

// registryHost is the registry an image reference pulls from, as
// reference.Domain names it ("docker.io" for Docker Hub).
func registryHost(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", invalid("invalid image reference %q: %v", image, err)
	}
	return reference.Domain(named), nil
}

// normalizeServer reduces the forms people write a registry in (a URL as
// Docker's config keeps them, a trailing path, Docker Hub's aliases) to a
// host as reference.Domain names it.
func normalizeServer(server string) string {
	s := strings.TrimSpace(server)
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	}
	s, _, _ = strings.Cut(s, "/")
	s = strings.ToLower(s)
	switch s {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return s
}

// checkRegistryAuth validates credentials given for image and returns a
// copy whose server is the image's registry. Credentials for another
// registry are refused: nodes would never use them.
func checkRegistryAuth(auth *api.RegistryAuth, image string) (*api.RegistryAuth, error) {
	if auth.GetUsername() == "" || auth.GetPassword() == "" {
		return nil, invalid("registry credentials need both a username and a password")
	}
	host, err := registryHost(image)
	if err != nil {
		return nil, err
	}
	out := proto.Clone(auth).(*api.RegistryAuth)
	if out.Server == "" {
		out.Server = host
	}
	if out.Server = normalizeServer(out.Server); out.Server != host {
		return nil, invalid("the registry credentials are for %s, but image %s comes from %s", out.Server, image, host)
	}
	return out, nil
}

// sealRegistryAuth seals auth for the service serviceID.
func (s *Server) sealRegistryAuth(auth *api.RegistryAuth, serviceID string) ([]byte, error) {
	if s.cfg.Sealer == nil {
		return nil, precondition("this manager has no data key, so it cannot keep registry credentials")
	}
	sealed, err := s.cfg.Sealer.SealMessage(auth, []byte(serviceID))
	if err != nil {
		return nil, fmt.Errorf("seal the registry credentials of service %s: %w", serviceID, err)
	}
	return sealed, nil
}

// openRegistryAuth opens the credentials svc keeps; nil when it has none.
func (s *Server) openRegistryAuth(svc *api.Service) (*api.RegistryAuth, error) {
	if len(svc.GetSealedRegistryAuth()) == 0 {
		return nil, nil
	}
	if s.cfg.Sealer == nil {
		return nil, precondition("service %s has registry credentials, but this manager has no data key to open them: give them again, or clear them", svc.GetSpec().GetName())
	}
	auth := &api.RegistryAuth{}
	if err := s.cfg.Sealer.OpenMessage(svc.GetSealedRegistryAuth(), []byte(svc.GetId()), auth); err != nil {
		return nil, precondition("the registry credentials of service %s cannot be opened (%v): give them again, or clear them", svc.GetSpec().GetName(), err)
	}
	return auth, nil
}

// nextRegistryAuth decides an update's credentials: the sealed value to
// store, and the credentials the image check uses (nil for none, or when
// kept ones need no check because the image did not change).
func (s *Server) nextRegistryAuth(req *api.UpdateServiceRequest, cur *api.Service, image string) (sealed []byte, auth *api.RegistryAuth, err error) {
	switch {
	case req.GetClearRegistryAuth() && req.GetRegistryAuth() != nil:
		return nil, nil, invalid("give new registry credentials or clear them, not both")
	case req.GetClearRegistryAuth():
		return nil, nil, nil
	case req.GetRegistryAuth() != nil:
		if auth, err = checkRegistryAuth(req.GetRegistryAuth(), image); err != nil {
			return nil, nil, err
		}
		sealed, err = s.sealRegistryAuth(auth, cur.GetId())
		return sealed, auth, err
	}
	sealed = cur.GetSealedRegistryAuth()
	if len(sealed) == 0 || image == cur.GetSpec().GetTask().GetContainer().GetImage() {
		return sealed, nil, nil
	}
	// A new image: the kept credentials must still be for its registry.
	if auth, err = s.openRegistryAuth(cur); err != nil {
		return nil, nil, err
	}
	if host, _ := registryHost(image); auth.GetServer() != host {
		return nil, nil, invalid("service %s has registry credentials for %s, but image %s comes from %s: give credentials for %s, or clear them",
			cur.GetSpec().GetName(), auth.GetServer(), image, host, host)
	}
	return sealed, auth, nil
}

// checkImage asks whether a task using ref can start, and explains a
// refusal in terms of what the caller can do.
func (s *Server) checkImage(ctx context.Context, ref string, auth *api.RegistryAuth) error {
	err := s.cfg.Images.CheckImage(ctx, ref, auth)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrRegistryUnauthorized) && auth == nil:
		return invalid("image %s cannot be used: %v. Give registry credentials (--with-registry-auth, or --registry-username with --registry-password-stdin)", ref, err)
	case errors.Is(err, ErrRegistryUnauthorized):
		return invalid("image %s cannot be used with the registry credentials of user %s: %v", ref, auth.GetUsername(), err)
	}
	return invalid("image %s cannot be used: %v. Import it with \"warren image import FILE\", or check the name and the registry", ref, err)
}

// withoutSecrets returns svc as the API shows it: never its sealed
// credentials.
func withoutSecrets(svc *api.Service) *api.Service {
	if svc != nil {
		svc.SealedRegistryAuth = nil
	}
	return svc
}
