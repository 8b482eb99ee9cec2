package node

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// openSession opens a session through p as far as the pool can tell: a
// Dial, then a session whose context ends when end is called. (The fake
// connections reach no server; the in-process failover test opens real ones.)
func openSession(t *testing.T, p *managerPool) (addr string, conn *grpc.ClientConn, end func()) {
	t.Helper()
	client, err := p.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	tc := client.(*trackedClient)
	ctx, cancel := context.WithCancel(context.Background())
	p.opened(ctx, tc.conn)
	return tc.addr, tc.conn, cancel
}

func wantAddr(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: manager %s, want %s", what, got, want)
	}
}

func TestPoolRotation(t *testing.T) {
	d := &dialLog{fail: map[string]bool{}}
	p, err := newPool([]string{"a:1", "b:1", "c:1"}, "", fakeDial(d), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// A renewal before any session dials the first manager; the session
	// takes the same connection.
	first, err := p.Conn()
	if err != nil {
		t.Fatal(err)
	}
	addr, conn, end := openSession(t, p)
	wantAddr(t, "first session", addr, "a:1")
	if conn != first {
		t.Fatal("the first session did not use the renewal's connection")
	}
	// Calls during a session (log requests, execs, renewals) stay with it.
	client, err := p.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantAddr(t, "a log request during the session", client.(*trackedClient).addr, "a:1")
	if c, _ := p.Conn(); c != conn {
		t.Fatal("a renewal during the session got another connection")
	}

	// Each session that ends moves the next one on, closing the old connection.
	for _, want := range []string{"b:1", "c:1", "a:1"} {
		end()
		var next *grpc.ClientConn
		addr, next, end = openSession(t, p)
		wantAddr(t, "after a session ended", addr, want)
		if st := conn.GetState(); st != connectivity.Shutdown {
			t.Fatalf("the previous connection is %v, want it closed", st)
		}
		conn = next
	}

	// A manager that cannot be dialled is skipped at the next call.
	d.mu.Lock()
	d.fail["b:1"] = true
	d.mu.Unlock()
	end()
	if _, err := p.Dial(context.Background()); err == nil {
		t.Fatal("Dial of an undiallable manager: no error")
	}
	addr, _, end = openSession(t, p)
	wantAddr(t, "after a failed dial", addr, "c:1")
	if got, want := d.dialled(), []string{"a:1", "b:1", "c:1", "a:1", "b:1", "c:1"}; !slices.Equal(got, want) {
		t.Fatalf("dialled %q, want %q", got, want)
	}

	// The current manager leaves the cluster: the next one is the first.
	p.Learn([]string{"a:1", "b:1"})
	end()
	addr, _, end = openSession(t, p)
	wantAddr(t, "after the current manager left", addr, "a:1")
	end()

	p.Close()
	if _, err := p.Dial(context.Background()); !errors.Is(err, errPoolClosed) {
		t.Fatalf("Dial after Close = %v, want errPoolClosed", err)
	}
	if _, err := p.Conn(); !errors.Is(err, errPoolClosed) {
		t.Fatalf("Conn after Close = %v, want errPoolClosed", err)
	}
}

func TestPoolSessionEnds(t *testing.T) {
	t.Run("one manager: a fresh connection to it", func(t *testing.T) {
		d := &dialLog{}
		p, _ := newPool([]string{"a:1"}, "", fakeDial(d), quiet)
		defer p.Close()
		_, conn, end := openSession(t, p)
		end()
		addr, next, _ := openSession(t, p)
		wantAddr(t, "second session", addr, "a:1")
		if next == conn || conn.GetState() != connectivity.Shutdown {
			t.Fatal("the second session reused the first one's connection")
		}
	})
	t.Run("a refused session moves on while its context lives", func(t *testing.T) {
		p, _ := newPool([]string{"a:1", "b:1"}, "", fakeDial(nil), quiet)
		defer p.Close()
		client, err := p.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The fake connection reaches no server: the session fails.
		if _, err := client.Session(ctx); err == nil {
			t.Fatal("a session with no server: no error")
		}
		addr, _, _ := openSession(t, p)
		wantAddr(t, "after a refused session", addr, "b:1")
	})
}
