package containerd

import (
	"errors"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/warren-project/warren/internal/runtime"
)

func TestProcessArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/entry", "e1"}, Cmd: []string{"c1", "c2"}}
	tests := []struct {
		name          string
		img           ocispec.ImageConfig
		command, args []string
		want          []string
	}{
		{"image", img, nil, nil, []string{"/entry", "e1", "c1", "c2"}},
		{"args", img, nil, []string{"a"}, []string{"/entry", "e1", "a"}},
		{"command", img, []string{"/cmd"}, nil, []string{"/cmd"}},
		{"both", img, []string{"/cmd"}, []string{"a"}, []string{"/cmd", "a"}},
		{"cmd only image", ocispec.ImageConfig{Cmd: []string{"/bin/sh"}}, nil, []string{"/bin/echo", "x"}, []string{"/bin/echo", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := processArgs(tt.img, runtime.Spec{Command: tt.command, Args: tt.args})
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("processArgs = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := processArgs(ocispec.ImageConfig{}, runtime.Spec{}); !errors.Is(err, runtime.ErrInvalidArgument) {
		t.Fatalf("no command: %v", err)
	}
	// The image config must not be modified.
	_, _ = processArgs(img, runtime.Spec{Args: []string{"zzz"}})
	if !slices.Equal(img.Entrypoint, []string{"/entry", "e1"}) {
		t.Fatalf("image entrypoint changed: %q", img.Entrypoint)
	}
}

func TestCPUQuota(t *testing.T) {
	for nano, want := range map[int64]int64{
		1_000_000_000: 100_000,
		500_000_000:   50_000,
		2_500_000_000: 250_000,
		1_000_000:     1000, // 0.001 CPU: raised to the kernel's 1 ms minimum
	} {
		if got := cpuQuota(nano); got != want {
			t.Errorf("cpuQuota(%d) = %d, want %d", nano, got, want)
		}
	}
}

func TestRefNameToImageName(t *testing.T) {
	for in, want := range map[string]string{
		"latest":                   "",
		"v1":                       "",
		"busybox:1":                "docker.io/library/busybox:1",
		"example.com/a/b:c":        "example.com/a/b:c",
		"localhost:5000/x":         "localhost:5000/x:latest",
		"Invalid:Ref:Many:Colons/": "",
	} {
		if got := refNameToImageName(in); got != want {
			t.Errorf("refNameToImageName(%q) = %q, want %q", in, got, want)
		}
	}
}
