package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"

	"github.com/warren-project/warren/api"
)

// dockerHubConfigKey is the key Docker's config files Docker Hub under.
const dockerHubConfigKey = "https://index.docker.io/v1/"

// helperTimeout bounds a Docker credential helper.
const helperTimeout = 30 * time.Second

// RegistryHost returns the registry an image is pulled from, as nodes name
// it: "docker.io" for Docker Hub ("nginx", "docker.io/library/nginx"),
// "registry.example.com:5000" for "registry.example.com:5000/app:1".
func RegistryHost(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("invalid image reference %q: %w", image, err)
	}
	return reference.Domain(named), nil
}

// DockerConfigPath is the Docker CLI's config: $DOCKER_CONFIG/config.json,
// else ~/.docker/config.json.
func DockerConfigPath() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".docker", "config.json")
}

// dockerConfig is the part of Docker's config.json that holds credentials.
type dockerConfig struct {
	Auths       map[string]dockerAuth `json:"auths"`
	CredsStore  string                `json:"credsStore"`
	CredHelpers map[string]string     `json:"credHelpers"`
}

type dockerAuth struct {
	Auth          string `json:"auth"` // base64 of "user:password"
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

// DockerConfigAuth returns the credentials the Docker CLI keeps for the
// registry of image (see DockerConfigPath), as `docker login` stored them:
// from its credential helper when the config names one, else from its
// "auths". The server is the image's registry.
func DockerConfigAuth(ctx context.Context, image string) (*api.RegistryAuth, error) {
	host, err := RegistryHost(image)
	if err != nil {
		return nil, err
	}
	path := DockerConfigPath()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no Docker config at %s to take credentials for %s from: run \"docker login %s\", or use --registry-username and --registry-password-stdin", path, host, host)
	}
	if err != nil {
		return nil, fmt.Errorf("read the Docker config: %w", err)
	}
	var cfg dockerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("the Docker config %s is not valid JSON: %w", path, err)
	}
	var user, pass string
	if helper := cfg.helperFor(host); helper != "" {
		if user, pass, err = fromHelper(ctx, helper, host); err != nil {
			return nil, err
		}
	}
	if user == "" {
		if user, pass, err = cfg.fromAuths(host); err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, path)
		}
	}
	if user == "" || pass == "" {
		return nil, fmt.Errorf("no credentials for %s in the Docker config %s: run \"docker login %s\", or use --registry-username and --registry-password-stdin", host, path, host)
	}
	return &api.RegistryAuth{Server: host, Username: user, Password: pass}, nil
}

// helperFor names the credential helper for host: its own, else the
// config's store; "" for none.
func (c dockerConfig) helperFor(host string) string {
	for key, helper := range c.CredHelpers {
		if configHost(key) == host {
			return helper
		}
	}
	return c.CredsStore
}

// fromAuths finds host's entry in auths; empty when there is none.
func (c dockerConfig) fromAuths(host string) (user, pass string, err error) {
	for key, a := range c.Auths {
		if configHost(key) != host {
			continue
		}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return "", "", fmt.Errorf("the Docker config's credentials for %s are not valid base64", host)
			}
			user, pass, _ = strings.Cut(string(raw), ":")
		}
		if user == "" {
			user, pass = a.Username, a.Password
		}
		if user == "" && a.IdentityToken != "" {
			return "", "", fmt.Errorf("the Docker config holds an identity token for %s, which warren cannot use: use --registry-username and --registry-password-stdin", host)
		}
		return user, pass, nil
	}
	return "", "", nil
}

// configHost is the registry a Docker config key names: keys may be URLs
// ("https://index.docker.io/v1/") or hosts.
func configHost(key string) string {
	s := key
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	}
	s, _, _ = strings.Cut(s, "/")
	switch s = strings.ToLower(s); s {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return s
}

// fromHelper asks docker-credential-NAME for host's credentials, as the
// Docker CLI does; a helper that knows none returns empty strings.
func fromHelper(ctx context.Context, name, host string) (user, pass string, err error) {
	server := host
	if host == "docker.io" {
		server = dockerHubConfigKey
	}
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	bin := "docker-credential-" + name
	cmd := exec.CommandContext(ctx, bin, "get")
	cmd.Stdin = strings.NewReader(server)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		// Helpers say "credentials not found in native keychain" on stdout.
		if strings.Contains(string(out), "not found") {
			return "", "", nil
		}
		return "", "", fmt.Errorf("the Docker credential helper %s failed for %s: %v %s", bin, host, err, strings.TrimSpace(stderr.String()))
	}
	var creds struct{ Username, Secret string }
	if err := json.Unmarshal(out, &creds); err != nil {
		return "", "", fmt.Errorf("the Docker credential helper %s answered something other than credentials for %s", bin, host)
	}
	if creds.Username == "<token>" {
		return "", "", fmt.Errorf("the Docker credential helper %s holds an identity token for %s, which warren cannot use: use --registry-username and --registry-password-stdin", bin, host)
	}
	return creds.Username, creds.Secret, nil
}
