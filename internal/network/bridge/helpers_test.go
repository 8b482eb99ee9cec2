package bridge

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/warren-project/warren/internal/testutil"
)

// testNode is a Bridge whose "host" is a network namespace the test made,
// so the real host's links, routes and sysctls are never touched.
type testNode struct {
	*Bridge
	hostNS string // path of the node's namespace
	nsName string // its name for `ip -n`
}

// newTestNode makes a node namespace and a Bridge in it with gateway gw
// (e.g. "10.200.3.1/24") and a Dir under the test's temp dir. Cleanup
// detaches every task and removes the namespace, even after a failure.
func newTestNode(t *testing.T, gw string) *testNode {
	t.Helper()
	testutil.RequireRoot(t, "ip")
	name := "wrnbr-" + randHex(4)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	dir := filepath.Join(t.TempDir(), "netns")
	b, err := New(Config{
		Gateway:   netip.MustParsePrefix(gw),
		Dir:       dir,
		HostNetNS: "/run/netns/" + name,
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Registered after TempDir, so it runs before TempDir is removed: no
	// namespace may stay mounted in there.
	t.Cleanup(func() {
		ids, _ := b.Attached()
		for _, id := range ids {
			if err := b.Detach(id); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		unmountUnder(t, dir)
	})
	return &testNode{Bridge: b, hostNS: "/run/netns/" + name, nsName: name}
}

// unmountUnder unmounts whatever a failed test left mounted below dir.
func unmountUnder(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			_ = unix.Unmount(fields[4], unix.MNT_DETACH)
			t.Errorf("cleanup: %s was still mounted", fields[4])
		}
	}
}

func (n *testNode) hostHandle(t *testing.T) *netlink.Handle {
	t.Helper()
	h, err := handleAt(n.hostNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// attach attaches a task at addr and fails the test if it cannot.
func (n *testNode) attach(t *testing.T, id, addr string) Attachment {
	t.Helper()
	a, err := n.Attach(t.Context(), AttachOptions{TaskID: id, Address: netip.MustParseAddr(addr)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// serve listens on addr:0 inside the namespace at nsPath and answers each
// connection with "hello"; it returns the address it listens on.
func serve(t *testing.T, nsPath, addr string) string {
	t.Helper()
	var l net.Listener
	err := runInNetNS(nsPath, func() (err error) {
		l, err = net.Listen("tcp", net.JoinHostPort(addr, "0"))
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, nsPath, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello"))
			c.Close()
		}
	})
	return l.Addr().String()
}

// dial connects from inside the namespace at nsPath to addr and reads the
// greeting.
func dial(nsPath, addr string) error {
	return runInNetNS(nsPath, func() error {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		if string(got) != "hello" {
			return errors.New("got " + string(got) + ", want hello")
		}
		return nil
	})
}

// readSysctl reads /proc/sys/name as seen in the namespace at nsPath.
func readSysctl(t *testing.T, nsPath, name string) string {
	t.Helper()
	var data []byte
	err := runInNetNS(nsPath, func() (err error) {
		data, err = os.ReadFile("/proc/sys/" + name)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// inode returns the inode of path; for a namespace file, the namespace's.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
