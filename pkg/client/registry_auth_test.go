package client

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

func TestRegistryHost(t *testing.T) {
	cases := map[string]string{
		"nginx":                             "docker.io",
		"docker.io/library/nginx:1.27":      "docker.io",
		"user/app":                          "docker.io",
		"registry.example.com:5000/app:1":   "registry.example.com:5000",
		"localhost:5000/a/b@sha256:" + sha0: "localhost:5000",
	}
	for image, want := range cases {
		if got, err := RegistryHost(image); err != nil || got != want {
			t.Errorf("RegistryHost(%q) = %q, %v; want %q", image, got, err, want)
		}
	}
	if _, err := RegistryHost("Not An Image"); err == nil {
		t.Error("RegistryHost accepted an invalid reference")
	}
}

const sha0 = "0000000000000000000000000000000000000000000000000000000000000000"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// fakeHelper installs docker-credential-NAME on PATH, answering with out
// (and failing when fail is set), as a credential helper does.
func fakeHelper(t *testing.T, name, out string, fail bool) {
	t.Helper()
	dir := t.TempDir()
	exit := "0"
	if fail {
		exit = "1"
	}
	script := "#!/bin/sh\nread server\nprintf '%s' '" + out + "'\nexit " + exit + "\n"
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestDockerConfigAuth(t *testing.T) {
	const priv = "registry.example.com:5000/team/app:1"
	cases := []struct {
		name   string
		config string // "" writes no file
		helper func(t *testing.T)
		image  string
		want   *api.RegistryAuth
		err    string
	}{
		{"auth by host", `{"auths":{"registry.example.com:5000":{"auth":"` + b64("alice:pw:with:colons") + `"}}}`, nil, priv,
			&api.RegistryAuth{Server: "registry.example.com:5000", Username: "alice", Password: "pw:with:colons"}, ""},
		{"auth by URL", `{"auths":{"https://registry.example.com:5000/v2/":{"auth":"` + b64("alice:pw") + `"}}}`, nil, priv,
			&api.RegistryAuth{Server: "registry.example.com:5000", Username: "alice", Password: "pw"}, ""},
		{"Docker Hub", `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("bob:hub") + `"}}}`, nil, "nginx",
			&api.RegistryAuth{Server: "docker.io", Username: "bob", Password: "hub"}, ""},
		{"username and password fields", `{"auths":{"registry.example.com:5000":{"username":"carol","password":"pw"}}}`, nil, priv,
			&api.RegistryAuth{Server: "registry.example.com:5000", Username: "carol", Password: "pw"}, ""},
		{"credential helper", `{"credHelpers":{"registry.example.com:5000":"fake"}}`,
			func(t *testing.T) {
				fakeHelper(t, "fake", `{"ServerURL":"x","Username":"dave","Secret":"from-helper"}`, false)
			}, priv,
			&api.RegistryAuth{Server: "registry.example.com:5000", Username: "dave", Password: "from-helper"}, ""},
		{"store without the host falls back to auths", `{"credsStore":"fake","auths":{"registry.example.com:5000":{"auth":"` + b64("erin:pw") + `"}}}`,
			func(t *testing.T) { fakeHelper(t, "fake", "credentials not found in native keychain", true) }, priv,
			&api.RegistryAuth{Server: "registry.example.com:5000", Username: "erin", Password: "pw"}, ""},
		{"helper fails", `{"credsStore":"fake"}`, func(t *testing.T) { fakeHelper(t, "fake", "", true) }, priv, nil, "docker-credential-fake failed"},
		{"another registry only", `{"auths":{"other.example.com":{"auth":"` + b64("a:b") + `"}}}`, nil, priv, nil, "no credentials for registry.example.com:5000 in the Docker config"},
		{"identity token", `{"auths":{"registry.example.com:5000":{"identitytoken":"tok"}}}`, nil, priv, nil, "identity token"},
		{"bad base64", `{"auths":{"registry.example.com:5000":{"auth":"%%%"}}}`, nil, priv, nil, "not valid base64"},
		{"bad JSON", `{"auths":`, nil, priv, nil, "not valid JSON"},
		{"no config", "", nil, priv, nil, "no Docker config at"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("DOCKER_CONFIG", dir)
			if c.config != "" {
				if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(c.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if c.helper != nil {
				c.helper(t)
			}
			got, err := DockerConfigAuth(context.Background(), c.image)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil || !proto.Equal(got, c.want) {
				t.Fatalf("DockerConfigAuth = %v, %v; want %v", got, err, c.want)
			}
		})
	}
}
