// Package testutil holds helpers shared by tests that touch real parts:
// waiting on conditions, a busybox image built locally, a registry on
// loopback. Nothing here is used outside tests.
package testutil

import (
	"bytes"
	"fmt"
	"math/rand/v2"
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
	freeMu.Lock()
	defer freeMu.Unlock()
	for range 1000 {
		port := freeLow + rand.IntN(freeHigh-freeLow)
		if freeGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		addr := l.Addr().String()
		l.Close()
		freeGiven[port] = true
		return addr
	}
	t.Fatal("no free port found below the ephemeral range")
	return ""
}

// FreeAddr's ports lie below Linux's ephemeral range (32768-60999): a
// port the kernel picked would be free to become the source port of any
// outgoing connection (another test's, another package's) before the
// test binds it. Ports handed out once in this process are not again.
const freeLow, freeHigh = 20000, 32768

var (
	freeMu    sync.Mutex
	freeGiven = map[int]bool{}
)

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
