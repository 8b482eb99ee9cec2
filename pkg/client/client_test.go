package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client"
	"github.com/warren-project/warren/pkg/client/clienttest"
)

func TestUnreachableSocketFailsFast(t *testing.T) {
	dir, err := os.MkdirTemp("", "wcl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	notSocket := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(notSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, reason string
	}{
		{"missing", filepath.Join(dir, "missing.sock"), "the socket does not exist"},
		{"refused", notSocket, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := "unix://" + tt.path
			c := newClient(t, host)
			start := time.Now()
			_, err := c.GetVersion(context.Background(), &api.GetVersionRequest{})
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("the call failed after %v; want a fast failure", elapsed)
			}
			want := "cannot reach the Warren manager at " + host + ": " + tt.reason +
				`; is "warren cluster init" running? Use -H or WARREN_HOST to choose another`
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n  %v\nwant:\n  %s", err, want)
			}
			if client.Code(err) != codes.Unavailable {
				t.Errorf("code %v; want Unavailable", client.Code(err))
			}
		})
	}
}

// errServer answers every GetService with a fixed error, and every
// GetVersion after a long delay.
type errServer struct {
	api.UnimplementedControlServer
	err error
}

func (s *errServer) GetService(context.Context, *api.GetServiceRequest) (*api.GetServiceResponse, error) {
	return nil, s.err
}

func (s *errServer) GetVersion(ctx context.Context, _ *api.GetVersionRequest) (*api.GetVersionResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestErrorTranslation(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"invalid argument", status.Error(codes.InvalidArgument, `invalid service name "Foo Bar": use letters`), `invalid service name "Foo Bar": use letters`},
		{"not found", status.Error(codes.NotFound, "service web not found"), "service web not found"},
		{"already exists", status.Error(codes.AlreadyExists, "a service named web already exists"), "a service named web already exists"},
		{"failed precondition", status.Error(codes.FailedPrecondition, "service web changed"), "service web changed"},
		{"no leader", status.Error(codes.Unavailable, "no leader elected yet"), "the Warren manager cannot serve this now: no leader elected yet"},
		{"internal", status.Error(codes.Internal, "boom"), "boom (Internal)"},
		{"permission", status.Error(codes.PermissionDenied, "workers may not"), "refused this call: workers may not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, clienttest.Start(t, &errServer{err: tt.err}))
			_, err := c.GetService(testCtx(t), &api.GetServiceRequest{Service: "web"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want it to contain %q", err, tt.want)
			}
			var ce *client.Error
			if !errors.As(err, &ce) || client.Code(err) != status.Code(tt.err) {
				t.Fatalf("error %v: want a *client.Error keeping code %v, got %v", err, status.Code(tt.err), client.Code(err))
			}
		})
	}
}

func TestCallTimeout(t *testing.T) {
	c := newClient(t, clienttest.Start(t, &errServer{err: status.Error(codes.NotFound, "x")}), client.WithCallTimeout(100*time.Millisecond))
	// Connect first, so that the timeout below is the server's silence.
	if _, err := c.GetService(context.Background(), &api.GetServiceRequest{}); client.Code(err) != codes.NotFound {
		t.Fatalf("GetService = %v; want the server's NotFound", err)
	}
	_, err := c.GetVersion(context.Background(), &api.GetVersionRequest{})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer in time") {
		t.Fatalf("error %v; want a deadline error saying the manager did not answer", err)
	}
}

func TestNewHosts(t *testing.T) {
	emptyTLS := t.TempDir()
	tests := []struct {
		name, host, want, wantErr string
	}{
		{"unix", "unix:///run/x.sock", "unix:///run/x.sock", ""},
		{"bare path", "/run/x.sock", "unix:///run/x.sock", ""},
		{"relative unix", "unix://x.sock", "", "the socket path must be absolute"},
		{"unknown scheme", "http://x:1", "", "unknown scheme http"},
		{"tcp without certificates", "tcp://manager:2377", "", "ca.crt: no such file or directory; put the cluster's ca.crt, client.crt and client.key in " + emptyTLS},
		{"tcp without port", "tcp://manager", "", "manager:2377"},
		{"tcp with path", "tcp://manager:1/x", "", "expected HOST:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.New(tt.host, client.WithTLSDir(emptyTLS))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New(%q) error %v; want one containing %q", tt.host, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.host, err)
			}
			defer c.Close()
			if c.Host() != tt.want {
				t.Fatalf("Host() = %q, want %q", c.Host(), tt.want)
			}
		})
	}
}

func TestHostFromEnvironment(t *testing.T) {
	t.Setenv(client.HostEnv, "unix:///tmp/from-env.sock")
	c := newClient(t, "")
	if c.Host() != "unix:///tmp/from-env.sock" {
		t.Fatalf("Host() = %q; want the WARREN_HOST value", c.Host())
	}
	t.Setenv(client.HostEnv, "")
	if c := newClient(t, ""); c.Host() != client.DefaultHost {
		t.Fatalf("Host() = %q; want %q", c.Host(), client.DefaultHost)
	}
}

func TestImportImage(t *testing.T) {
	fake := clienttest.New()
	c := newClient(t, clienttest.Start(t, fake))
	data := make([]byte, 2*client.ImportChunkSize+client.ImportChunkSize/2)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	var totals []int64
	images, err := c.ImportImage(testCtx(t), bytes.NewReader(data), []string{"n1"}, func(n int64) { totals = append(totals, n) })
	if err != nil {
		t.Fatalf("ImportImage: %v", err)
	}
	sum := sha256.Sum256(data)
	if len(images) != 1 || images[0].GetSize() != int64(len(data)) || images[0].GetDigest() != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("images %v: want one of %d bytes with the archive's digest", images, len(data))
	}
	if got := images[0].GetNodeIds(); len(got) != 1 || got[0] != "n1" {
		t.Errorf("node IDs %v; want [n1]", got)
	}
	want := []int64{client.ImportChunkSize, 2 * client.ImportChunkSize, int64(len(data))}
	if len(totals) != len(want) {
		t.Fatalf("progress %v; want %v", totals, want)
	}
	for i := range want {
		if totals[i] != want[i] {
			t.Fatalf("progress %v; want %v", totals, want)
		}
	}
}

func TestImportImageServerError(t *testing.T) {
	c := newClient(t, clienttest.Start(t, &errServer{}))
	_, err := c.ImportImage(testCtx(t), bytes.NewReader(make([]byte, 10)), nil, nil)
	if client.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "does not support this call") {
		t.Fatalf("ImportImage error %v (%v); want the translated Unimplemented error", err, client.Code(err))
	}
}
