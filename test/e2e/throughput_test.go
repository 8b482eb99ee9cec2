package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as a TCP sink and source, run inside a
// namespace with nsenter for throughput figures. The sink accepts one
// connection on its address, reads it to the end and prints "BYTES
// NANOSECONDS"; the source ("ADDR,BYTES") sends that many zero bytes.
const (
	sinkEnv = "WARREN_E2E_TCP_SINK"
	sendEnv = "WARREN_E2E_TCP_SEND"
	// pingEnv ("ADDR,COUNT") makes it send COUNT HTTP requests, one
	// connection each, and print the p50 and p99 times in nanoseconds.
	pingEnv = "WARREN_E2E_HTTP_PING"
)

// helperMain runs the sink or the source when the environment asks for
// one, and then exits the process; it returns otherwise.
func helperMain() {
	if v := os.Getenv(sendEnv); v != "" {
		addr, size, _ := strings.Cut(v, ",")
		n, _ := strconv.ParseInt(size, 10, 64)
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		if _, err := io.CopyN(conn, zeros{}, n); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		_ = conn.Close()
		os.Exit(0)
	}
	if v := os.Getenv(pingEnv); v != "" {
		addr, count, _ := strings.Cut(v, ",")
		n, _ := strconv.Atoi(count)
		took, err := requestTimes(addr, n)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println(took[len(took)/2].Nanoseconds(), took[len(took)*99/100].Nanoseconds())
		os.Exit(0)
	}
	addr := os.Getenv(sinkEnv)
	if addr == "" {
		return
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("listening")
	conn, err := lis.Accept()
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	start := time.Now()
	n, _ := io.Copy(io.Discard, conn)
	fmt.Println(n, time.Since(start).Nanoseconds())
	os.Exit(0)
}

// throughput sends size bytes over TCP from namespace from (a path or a
// name under /run/netns) to a sink in namespace to, listening on
// listenAddr and reached at dialAddr, and returns Gbit/s as the sink saw it.
func throughput(t *testing.T, from, to, listenAddr, dialAddr string, size int64) float64 {
	t.Helper()
	nsPath := func(ns string) string {
		if strings.HasPrefix(ns, "/") {
			return ns
		}
		return "/run/netns/" + ns
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sink := exec.Command("nsenter", "--net="+nsPath(to), self)
	sink.Env = append(os.Environ(), sinkEnv+"="+listenAddr)
	out, err := sink.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sink.Process.Kill(); _ = sink.Wait() }()
	buf := make([]byte, 128)
	n, _ := out.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "listening") {
		t.Fatalf("sink in %s: %q", to, buf[:n])
	}
	// The sender is the binary again: a dial from this process would leave
	// from this process's namespace.
	sender := exec.Command("nsenter", "--net="+nsPath(from), self)
	sender.Env = append(os.Environ(), sendEnv+"="+dialAddr+","+strconv.FormatInt(size, 10))
	if msg, err := sender.CombinedOutput(); err != nil {
		t.Fatalf("sender in %s: %v: %s", from, err, msg)
	}
	rest, _ := io.ReadAll(out)
	f := strings.Fields(string(rest))
	if len(f) != 2 {
		t.Fatalf("sink in %s said %q", to, rest)
	}
	bytes, _ := strconv.ParseFloat(f[0], 64)
	ns, _ := strconv.ParseFloat(f[1], 64)
	if int64(bytes) != size || ns <= 0 {
		t.Fatalf("sink in %s got %v bytes in %v ns, want %d", to, bytes, ns, size)
	}
	return bytes * 8 / ns // bits per nanosecond = Gbit/s
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// requestTimes sends n HTTP/1.0 requests to addr, a connection each, and
// returns their times, sorted.
func requestTimes(addr string, n int) ([]time.Duration, error) {
	took := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := httpGet(addr); err != nil {
			return nil, err
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	return took, nil
}

// latencyFrom runs n requests to addr from namespace ns (a path) and
// returns the p50 and p99 times.
func latencyFrom(t *testing.T, ns, addr string, n int) (p50, p99 time.Duration) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net="+ns, self)
	cmd.Env = append(os.Environ(), pingEnv+"="+addr+","+strconv.Itoa(n))
	out, err := cmd.CombinedOutput()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 2 {
		t.Fatalf("requests to %s from %s: %v: %s", addr, ns, err, out)
	}
	a, _ := strconv.ParseInt(f[0], 10, 64)
	b, _ := strconv.ParseInt(f[1], 10, 64)
	return time.Duration(a), time.Duration(b)
}
