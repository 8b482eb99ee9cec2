package worker

import (
	"testing"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
)

func TestPullAuthOnlyForTheImageRegistry(t *testing.T) {
	creds := func(server string) *api.RegistryAuth {
		return &api.RegistryAuth{Server: server, Username: "u", Password: "p"}
	}
	cases := []struct {
		name string
		auth *api.RegistryAuth
		ref  string
		want bool
	}{
		{"none", nil, "registry.example.com:5000/app:1", false},
		{"same registry", creds("registry.example.com:5000"), "registry.example.com:5000/app:1", true},
		{"Docker Hub", creds("docker.io"), "docker.io/library/busybox:latest", true},
		{"another port", creds("registry.example.com"), "registry.example.com:5000/app:1", false},
		{"another registry", creds("registry.example.com:5000"), "docker.io/library/busybox:latest", false},
		{"no server", creds(""), "docker.io/library/busybox:latest", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			task := testTask("t1")
			task.RegistryAuth = c.auth
			got := pullAuth(task, c.ref)
			if c.want && (got == nil || *got != (runtime.RegistryAuth{Username: "u", Password: "p"})) || !c.want && got != nil {
				t.Fatalf("pullAuth = %+v, want credentials: %v", got, c.want)
			}
		})
	}
}
