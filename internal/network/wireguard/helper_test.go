package wireguard

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The userspace device opens its TUN and UDP socket in the namespace of
// whatever thread runs it, and its goroutines hop threads; so each side of
// a tunnel test runs in a process of its own, the test binary re-executed
// under `ip netns exec` in helper mode. The test drives it with one JSON
// command per line on stdin and reads one JSON reply per line on stdout.
const helperEnv = "WARREN_WG_TEST_HELPER"

// helperLogEnv set to anything prints the helpers' debug logs (the
// handshakes, wireguard-go's own lines) even when the test passes.
const helperLogEnv = "WARREN_WG_TEST_LOG"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		os.Exit(runHelper(cfg))
	}
	os.Exit(m.Run())
}

type helperConfig struct {
	Name       string
	PrivateKey wgtypes.Key
	Address    netip.Prefix
	ListenPort int
	Mode       Mode
}

type helperCmd struct {
	Op    string // set, peers, routes, listen, dial, close
	Peers []Peer
	Addr  string
}

type helperReply struct {
	Error  string
	Mode   Mode
	Peers  []PeerStatus
	Routes []string
	Port   int
}

// runHelper opens a link as the config says and serves commands until
// stdin closes or a close command comes.
func runHelper(cfgJSON string) int {
	var hc helperConfig
	out := json.NewEncoder(os.Stdout)
	if err := json.Unmarshal([]byte(cfgJSON), &hc); err != nil {
		_ = out.Encode(helperReply{Error: err.Error()})
		return 1
	}
	link, err := Open(Config{Name: hc.Name, PrivateKey: hc.PrivateKey, Address: hc.Address,
		ListenPort: hc.ListenPort, Mode: hc.Mode, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		_ = out.Encode(helperReply{Error: err.Error()})
		return 1
	}
	defer link.Close()
	_ = out.Encode(helperReply{Mode: link.Mode()})
	in := json.NewDecoder(os.Stdin)
	for {
		var cmd helperCmd
		if err := in.Decode(&cmd); err != nil {
			return 0
		}
		reply := serveHelper(link, hc, cmd)
		_ = out.Encode(reply)
		if cmd.Op == "close" {
			return 0
		}
	}
}

func serveHelper(link *Link, hc helperConfig, cmd helperCmd) helperReply {
	var r helperReply
	var err error
	switch cmd.Op {
	case "set":
		err = link.SetPeers(cmd.Peers)
	case "peers":
		r.Peers, err = link.Peers()
	case "routes":
		r.Routes, err = linkRoutes(link.Name())
	case "listen":
		r.Port, err = echoServer(hc.Address.Addr())
	case "dial":
		err = echoOnce(cmd.Addr)
	case "close":
		err = link.Close()
	default:
		err = fmt.Errorf("unknown op %q", cmd.Op)
	}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// linkRoutes lists every route through the interface in the main table,
// ours or not, as "dst proto N".
func linkRoutes(name string) ([]string, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, err
	}
	routes, err := netlink.RouteList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range routes {
		if r.Dst != nil && !r.Dst.IP.IsLinkLocalUnicast() && !r.Dst.IP.IsMulticast() {
			out = append(out, fmt.Sprintf("%s proto %d", r.Dst, r.Protocol))
		}
	}
	return out, nil
}

// echoServer answers each connection with what it reads, until the
// helper exits.
func echoServer(addr netip.Addr) (int, error) {
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		return 0, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// echoOnce sends a line to an echo server and checks it comes back.
func echoOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	const msg = "through the tunnel\n"
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg {
		return fmt.Errorf("echo returned %q", got)
	}
	return nil
}

// helper is the test's end of a helper process.
type helper struct {
	t      *testing.T
	ns     string
	in     io.WriteCloser
	out    *json.Decoder
	stderr *lockedBuffer
	mode   Mode
}

// startHelper opens a link in namespace ns. It returns an error (the
// helper's own message) if Open failed there.
func startHelper(t *testing.T, ns string, hc helperConfig) (*helper, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(hc)
	cmd := exec.Command("ip", "netns", "exec", ns, exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+string(cfg))
	h := &helper{t: t, ns: ns, stderr: &lockedBuffer{}}
	cmd.Stderr = h.stderr
	h.in, _ = cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	h.out = json.NewDecoder(stdout)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { h.stop(cmd, exited) })
	var first helperReply
	if err := h.out.Decode(&first); err != nil {
		t.Fatalf("helper in %s gave no first reply: %v\n%s", ns, err, h.stderr)
	}
	if first.Error != "" {
		return nil, errors.New(first.Error)
	}
	h.mode = first.Mode
	return h, nil
}

// stop ends the helper by closing its stdin, and kills it if it hangs.
func (h *helper) stop(cmd *exec.Cmd, exited chan error) {
	h.in.Close()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		h.t.Errorf("helper in %s did not exit when its stdin closed", h.ns)
	}
	if h.t.Failed() || os.Getenv(helperLogEnv) != "" {
		h.t.Logf("helper log (%s):\n%s", h.ns, h.stderr)
	}
}

// do sends one command and returns the reply, failing the test on an error.
func (h *helper) do(cmd helperCmd) helperReply {
	h.t.Helper()
	r, err := h.try(cmd)
	if err != nil {
		h.t.Fatalf("%s in %s: %v", cmd.Op, h.ns, err)
	}
	return r
}

func (h *helper) try(cmd helperCmd) (helperReply, error) {
	h.t.Helper()
	if err := json.NewEncoder(h.in).Encode(cmd); err != nil {
		h.t.Fatalf("send %s to helper in %s: %v", cmd.Op, h.ns, err)
	}
	var r helperReply
	if err := h.out.Decode(&r); err != nil {
		h.t.Fatalf("read reply to %s from helper in %s: %v\n%s", cmd.Op, h.ns, err, h.stderr)
	}
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// run runs a command, failing the test with its output if it fails.
func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newNetns creates a network namespace that goes away when the test ends.
func newNetns(t *testing.T, name string) string {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v\n%s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}
