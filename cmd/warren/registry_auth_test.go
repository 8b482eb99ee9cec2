package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client"
)

const privImage = "registry.example.com:5000/team/app:1"

// warrenStdin runs the CLI with stdin.
func warrenStdin(t *testing.T, host, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, append([]string{"warren", "-H", host}, args...), strings.NewReader(stdin), &out, &errOut, func(c *cli) {
		c.clientOpts = []client.Option{client.WithPollWait(2 * time.Second)}
	})
	return result{out: out.String(), err: errOut.String(), code: code}
}

// dockerConfig points DOCKER_CONFIG at a config.json holding content.
func dockerConfig(t *testing.T, content string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

func TestServiceCreateSendsRegistryAuth(t *testing.T) {
	want := &api.RegistryAuth{Server: "registry.example.com:5000", Username: "alice", Password: "pw from stdin"}
	cases := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"username and password on stdin", "pw from stdin\r\n", []string{"--registry-username", "alice", "--registry-password-stdin"}},
		{"from the Docker config", "", []string{"--with-registry-auth"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dockerConfig(t, `{"auths":{"registry.example.com:5000":{"auth":"`+base64.StdEncoding.EncodeToString([]byte("alice:pw from stdin"))+`"}}}`)
			fake, host := fakeManager(t)
			args := append([]string{"service", "create", "app", "--image", privImage, "-d"}, c.args...)
			warrenStdin(t, host, c.stdin, args...).wantOK(t)
			reqs := fake.Requests("CreateService")
			if got := reqs[0].(*api.CreateServiceRequest).GetRegistryAuth(); !proto.Equal(got, want) {
				t.Fatalf("credentials sent: %v, want %v", got, want)
			}
		})
	}
}

func TestServiceCreateWithoutRegistryAuthSendsNone(t *testing.T) {
	fake, host := fakeManager(t)
	warren(t, host, "service", "create", "app", "--image", privImage, "-d").wantOK(t)
	if got := fake.Requests("CreateService")[0].(*api.CreateServiceRequest).GetRegistryAuth(); got != nil {
		t.Fatalf("credentials sent without a flag: %v", got)
	}
}

func TestRegistryAuthFlagErrors(t *testing.T) {
	dockerConfig(t, `{"auths":{"other.example.com":{"auth":"`+base64.StdEncoding.EncodeToString([]byte("a:b"))+`"}}}`)
	create := []string{"service", "create", "app", "--image", privImage, "-d"}
	update := []string{"service", "update", "app", "-d"}
	cases := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"password without username", append(create, "--registry-password-stdin"), "pw", "--registry-password-stdin needs --registry-username"},
		{"username without password", append(create, "--registry-username", "alice"), "", "the password is read from stdin, never from the command line"},
		{"empty stdin", append(create, "--registry-username", "alice", "--registry-password-stdin"), "\n", "stdin holds no password"},
		{"both ways", append(create, "--with-registry-auth", "--registry-username", "alice", "--registry-password-stdin"), "pw", "not both"},
		{"nothing in the Docker config", append(create, "--with-registry-auth"), "", "no credentials for registry.example.com:5000 in the Docker config"},
		{"clear with new ones", append(update, "--registry-auth-clear", "--with-registry-auth"), "", "--registry-auth-clear removes the credentials"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake, host := fakeManager(t)
			r := warrenStdin(t, host, c.stdin, c.args...)
			r.wantError(t, c.want)
			if strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
				t.Fatalf("error %q is not one line", r.err)
			}
			if calls := fake.Calls(); len(calls) != 0 {
				t.Fatalf("the manager got calls %v; want none", calls)
			}
		})
	}
}

func TestServiceUpdateRegistryAuth(t *testing.T) {
	cases := []struct {
		name      string
		stdin     string
		args      []string
		wantAuth  *api.RegistryAuth
		wantClear bool
	}{
		{"new credentials", "pw2\n", []string{"--registry-username", "bob", "--registry-password-stdin"},
			&api.RegistryAuth{Server: "registry.example.com:5000", Username: "bob", Password: "pw2"}, false},
		{"new credentials for the new image", "pw3", []string{"--image", "other.example.com/app:2", "--registry-username", "bob", "--registry-password-stdin"},
			&api.RegistryAuth{Server: "other.example.com", Username: "bob", Password: "pw3"}, false},
		{"clear", "", []string{"--registry-auth-clear"}, nil, true},
		{"neither keeps them", "", []string{"--env-add", "A=1"}, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake, host := fakeManager(t)
			warren(t, host, "service", "create", "app", "--image", privImage, "-d").wantOK(t)
			warrenStdin(t, host, c.stdin, append([]string{"service", "update", "app", "-d"}, c.args...)...).wantOK(t)
			up := lastUpdate(t, fake.Requests("UpdateService"))
			if !proto.Equal(up.GetRegistryAuth(), c.wantAuth) || up.GetClearRegistryAuth() != c.wantClear {
				t.Fatalf("update sent credentials %v clear %v; want %v clear %v", up.GetRegistryAuth(), up.GetClearRegistryAuth(), c.wantAuth, c.wantClear)
			}
		})
	}
}
