package client

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestDefaultManagersFile(t *testing.T) {
	tests := []struct{ tlsDir, want string }{
		{"/root/.warren/tls", "/root/.warren/managers.json"},
		{"/etc/warren/admin/", "/etc/warren/managers.json"},
		{"bundle", "managers.json"},
	}
	for _, tt := range tests {
		t.Run(tt.tlsDir, func(t *testing.T) {
			if got := DefaultManagersFile(tt.tlsDir); got != tt.want {
				t.Fatalf("DefaultManagersFile(%q) = %q, want %q", tt.tlsDir, got, tt.want)
			}
		})
	}
}

// Bundles of two clusters side by side share the file, not their managers.
func TestManagersFileKeyedByTLSDir(t *testing.T) {
	parent := t.TempDir()
	a, b := filepath.Join(parent, "a"), filepath.Join(parent, "b")
	file := DefaultManagersFile(a)
	if file != DefaultManagersFile(b) {
		t.Fatalf("siblings use %s and %s; want one file", file, DefaultManagersFile(b))
	}
	quiet := slog.New(slog.DiscardHandler)
	if err := saveManagers(file, a, []string{"a1:2377", "a2:2377"}); err != nil {
		t.Fatal(err)
	}
	if err := saveManagers(file, b, []string{"b1:2377"}); err != nil {
		t.Fatal(err)
	}
	if got := loadManagers(file, a, quiet); !slices.Equal(got, []string{"a1:2377", "a2:2377"}) {
		t.Fatalf("managers of a: %q", got)
	}
	if got := loadManagers(file, b, quiet); !slices.Equal(got, []string{"b1:2377"}) {
		t.Fatalf("managers of b: %q", got)
	}
	if got := loadManagers(file, filepath.Join(parent, "c"), quiet); got != nil {
		t.Fatalf("managers of an unknown directory: %q; want none", got)
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%s holds %v; want only %s (no temporary files left)", parent, entries, ManagersFileName)
	}
}

func TestMissingManagersFileSaysNothing(t *testing.T) {
	var logs bytes.Buffer
	got := loadManagers(filepath.Join(t.TempDir(), ManagersFileName), "/x", slog.New(slog.NewTextHandler(&logs, nil)))
	if got != nil || logs.Len() != 0 {
		t.Fatalf("loadManagers = %q, logs %q; want nothing, silently", got, logs.String())
	}
}
