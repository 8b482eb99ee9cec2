// Package testutil holds helpers shared by tests that touch real parts:
// waiting on conditions, a busybox image built locally, a registry on
// loopback. Nothing here is used outside tests.
package testutil

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warren-project/warren/internal/ociimage"
)

// WaitFor polls cond every 20 ms until it holds, or fails the test saying
// what never happened.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RequireRoot skips the test, saying why, unless it runs as root with the
// named binaries on PATH.
func RequireRoot(t testing.TB, binaries ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root and real containers: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containers (run the tests as root: sudo make test)")
	}
	for _, b := range binaries {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s on PATH (Debian: apt-get install containerd runc busybox-static docker-registry)", b)
		}
	}
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var (
	bbOnce  sync.Once
	bbFiles []ociimage.File
	bbErr   error
)

// BusyboxImage returns an OCI layout tar of a busybox image named ref, made
// from the host's static busybox.
func BusyboxImage(t testing.TB, ref string, cfg ociimage.Config, extra ...ociimage.File) []byte {
	t.Helper()
	bbOnce.Do(func() {
		bb, err := exec.LookPath("busybox")
		if err != nil {
			bbErr = err
			return
		}
		bbFiles, bbErr = ociimage.BusyboxFiles(bb)
	})
	if bbErr != nil {
		t.Fatalf("busybox image: %v", bbErr)
	}
	if cfg.Env == nil {
		cfg.Env = []string{"PATH=/bin"}
	}
	var buf bytes.Buffer
	if err := ociimage.Build(&buf, ref, append(slices.Clone(bbFiles), extra...), cfg); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
