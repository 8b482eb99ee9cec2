package runtime

import (
	"errors"
	"testing"
)

func TestNormalizeRef(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "nginx", want: "docker.io/library/nginx:latest"},
		{in: "nginx:1.25", want: "docker.io/library/nginx:1.25"},
		{in: "library/nginx", want: "docker.io/library/nginx:latest"},
		{in: "docker.io/library/nginx:latest", want: "docker.io/library/nginx:latest"},
		{in: "user/app", want: "docker.io/user/app:latest"},
		{in: "myreg:5000/x/y:tag", want: "myreg:5000/x/y:tag"},
		{in: "localhost/app", want: "localhost/app:latest"},
		{in: "127.0.0.1:5000/app:v1", want: "127.0.0.1:5000/app:v1"},
		{in: "nginx@" + dg, want: "docker.io/library/nginx@" + dg},
		{in: "nginx:1.25@" + dg, want: "docker.io/library/nginx@" + dg},
		{in: "myreg:5000/x/y@" + dg, want: "myreg:5000/x/y@" + dg},
		{in: "UPPER", wantErr: true},
		{in: "", wantErr: true},
		{in: "nginx@sha256:short", wantErr: true},
		{in: "a b", wantErr: true},
		{in: "nginx:", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeRef(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NormalizeRef(%q) = %q, want an error", tt.in, got)
				}
				if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("error %v does not wrap ErrInvalidArgument", err)
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("NormalizeRef(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("NormalizeRef(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMatchLabels(t *testing.T) {
	have := map[string]string{"a": "1", "b": "2"}
	if !MatchLabels(have, nil) || !MatchLabels(have, map[string]string{"a": "1"}) {
		t.Fatal("subset should match")
	}
	if MatchLabels(have, map[string]string{"a": "2"}) || MatchLabels(have, map[string]string{"c": ""}) {
		t.Fatal("mismatch should not match")
	}
}
