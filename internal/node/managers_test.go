package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMergeAddrs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lists [][]string
		want  []string
	}{
		{"nothing", nil, nil},
		{"configured first, then the rest in order", [][]string{{"a:1"}, {"b:1", "c:1"}}, []string{"a:1", "b:1", "c:1"}},
		{"duplicates keep their first place", [][]string{{"b:1"}, {"a:1", "b:1"}, {"c:1", "a:1"}}, []string{"b:1", "a:1", "c:1"}},
		{"empty addresses dropped", [][]string{{""}, {"a:1", ""}}, []string{"a:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeAddrs(tc.lists...); !slices.Equal(got, tc.want) {
				t.Fatalf("mergeAddrs(%q) = %q, want %q", tc.lists, got, tc.want)
			}
		})
	}
}

func TestLearnAddrs(t *testing.T) {
	for _, tc := range []struct {
		name         string
		known, named []string
		want         []string
	}{
		{"new managers go last", []string{"a:1", "b:1"}, []string{"b:1", "c:1"}, []string{"a:1", "b:1", "c:1"}},
		{"a leader's order does not reorder", []string{"a:1", "b:1", "c:1"}, []string{"c:1", "b:1", "a:1"}, []string{"a:1", "b:1", "c:1"}},
		{"managers no longer named go", []string{"a:1", "b:1", "c:1"}, []string{"a:1", "c:1", "d:1"}, []string{"a:1", "c:1", "d:1"}},
		{"the first address stays, named or not", []string{"lb.example:2377", "b:1"}, []string{"10.0.0.1:2377", "b:1"}, []string{"lb.example:2377", "b:1", "10.0.0.1:2377"}},
		{"duplicates in the named list", []string{"a:1"}, []string{"b:1", "b:1", ""}, []string{"a:1", "b:1"}},
		{"nothing known yet", nil, []string{"a:1"}, []string{"a:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := learnAddrs(tc.known, tc.named); !slices.Equal(got, tc.want) {
				t.Fatalf("learnAddrs(%q, %q) = %q, want %q", tc.known, tc.named, got, tc.want)
			}
		})
	}
}

func TestManagersPersistRoundTrip(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, ManagersFile)
	p, err := newPool([]string{"a:1", "b:1"}, file, fakeDial(nil), quiet)
	if err != nil {
		t.Fatal(err)
	}
	p.Learn([]string{"b:1", "c:1"})
	want := []string{"a:1", "b:1", "c:1"}
	if got := loadManagers(file, quiet); !slices.Equal(got, want) {
		t.Fatalf("loaded %q after Learn, want %q", got, want)
	}
	// A restart that names no manager starts where this one ended.
	if got := startAddrs("", file, []string{"a:1", "b:1"}, quiet); !slices.Equal(got, want) {
		t.Fatalf("a restart starts from %q, want %q", got, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("data dir holds %v, want only %s (no temporary files left)", entries, ManagersFile)
	}
}

func TestCorruptManagersFileIgnored(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
	}{
		{"not JSON", "\x00\x01garbage"},
		{"cut short", `{"managers": ["a:1",`},
		{"wrong type", `{"managers": 42}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), ManagersFile)
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			if got := loadManagers(file, log); got != nil {
				t.Fatalf("loadManagers of a corrupt file = %q, want nothing", got)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), file) {
				t.Fatalf("no warning naming %s; logs:\n%s", file, logs.String())
			}
			// The next Learn replaces it.
			p, err := newPool([]string{"a:1"}, file, fakeDial(nil), quiet)
			if err != nil {
				t.Fatal(err)
			}
			p.Learn([]string{"a:1", "b:1"})
			if got := loadManagers(file, quiet); !slices.Equal(got, []string{"a:1", "b:1"}) {
				t.Fatalf("after Learn the file holds %q", got)
			}
		})
	}
	t.Run("missing file says nothing", func(t *testing.T) {
		var logs bytes.Buffer
		if got := loadManagers(filepath.Join(t.TempDir(), ManagersFile), slog.New(slog.NewTextHandler(&logs, nil))); got != nil || logs.Len() != 0 {
			t.Fatalf("loadManagers = %q, logs %q; want nothing, silently", got, logs.String())
		}
	})
}

func TestNewPoolNeedsAnAddress(t *testing.T) {
	if _, err := newPool([]string{""}, "", fakeDial(nil), quiet); err == nil {
		t.Fatal("newPool with no address: no error")
	}
}

// dialLog records the addresses a pool dials; fakeDial's connections never
// reach a network.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
	fail  map[string]bool
}

func fakeDial(d *dialLog) func(string) (*grpc.ClientConn, error) {
	return func(addr string) (*grpc.ClientConn, error) {
		if d != nil {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.addrs = append(d.addrs, addr)
			if d.fail[addr] {
				return nil, errors.New("test: cannot dial")
			}
		}
		return grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return nil, errors.New("test: no network") }))
	}
}

func (d *dialLog) dialled() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.addrs)
}
