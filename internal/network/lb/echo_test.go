package lb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve runs a TCP server on port in h's namespace until the test ends.
// Each connection is greeted with "NAME CLIENT-ADDRESS\n" (the backend's
// name, and the source address it sees), then echoed.
func serve(t *testing.T, h host, name string, port int) {
	t.Helper()
	var l net.Listener
	var err error
	inNS(t, h.ns, func() { l, err = net.Listen("tcp4", fmt.Sprintf(":%d", port)) })
	if err != nil {
		t.Fatalf("listen on %s:%d in %s: %v", h.addr, port, h.ns, err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				from, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				if _, err := fmt.Fprintf(c, "%s %s\n", name, from); err == nil {
					_, _ = io.Copy(c, c)
				}
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// greeting is what a backend said to one connection.
type greeting struct {
	backend string // the backend's name
	from    string // the client address the backend saw
}

// open connects to target from namespace ns and reads the greeting; the
// caller closes the connection.
func open(t *testing.T, ns, target string) (net.Conn, *bufio.Reader, greeting, error) {
	t.Helper()
	var c net.Conn
	var err error
	inNS(t, ns, func() { c, err = net.DialTimeout("tcp4", target, 3*time.Second) })
	if err != nil {
		return nil, nil, greeting{}, err
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, nil, greeting{}, fmt.Errorf("read greeting from %s: %w", target, err)
	}
	name, from, _ := strings.Cut(strings.TrimSpace(line), " ")
	_ = c.SetDeadline(time.Time{})
	return c, r, greeting{name, from}, nil
}

// hello makes one connection to target from ns and returns its greeting.
func hello(t *testing.T, ns, target string) greeting {
	t.Helper()
	c, _, g, err := open(t, ns, target)
	if err != nil {
		t.Fatalf("connect to %s from %s: %v", target, ns, err)
	}
	c.Close()
	return g
}

// spread makes n connections to target from ns and counts them by backend,
// keeping the addresses each backend saw.
func spread(t *testing.T, ns, target string, n int) (count map[string]int, from map[string][]string) {
	t.Helper()
	count, from = map[string]int{}, map[string][]string{}
	for range n {
		g := hello(t, ns, target)
		count[g.backend]++
		if !slices.Contains(from[g.backend], g.from) {
			from[g.backend] = append(from[g.backend], g.from)
		}
	}
	return count, from
}

// echo checks that c still carries data both ways.
func echo(c net.Conn, r *bufio.Reader, msg string) error {
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != msg {
		return errors.New("echo returned " + got)
	}
	return nil
}
