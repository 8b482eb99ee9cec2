package dns

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestTableSet(t *testing.T) {
	tb := NewTable()
	tasks := addrs("10.200.1.2")
	tb.Set([]Service{{Name: "Web.", Tasks: tasks}, {Name: ""}})
	tasks[0] = addrs("10.200.9.9")[0] // Set kept its own copy
	e, ok := tb.lookup("web")
	if !ok || !slices.Equal(e.serviceAddrs(), addrs("10.200.1.2")) {
		t.Fatalf("lookup web after Set: %v %v", e, ok)
	}
	if _, ok := tb.lookup(""); ok {
		t.Error("a service with no name was kept")
	}
	serial := tb.serial()
	tb.Set(nil)
	if _, ok := tb.lookup("web"); ok {
		t.Error("Set(nil) left web in the table")
	}
	if tb.serial() == serial {
		t.Error("serial unchanged by Set")
	}
}

func TestTaskAddrsRotate(t *testing.T) {
	e := &entry{tasks: addrs("10.0.0.1", "10.0.0.2", "10.0.0.3")}
	for i, want := range [][]string{
		{"10.0.0.1", "10.0.0.2", "10.0.0.3"},
		{"10.0.0.2", "10.0.0.3", "10.0.0.1"},
		{"10.0.0.3", "10.0.0.1", "10.0.0.2"},
		{"10.0.0.1", "10.0.0.2", "10.0.0.3"},
	} {
		if got := e.taskAddrs(); !slices.Equal(got, addrs(want...)) {
			t.Errorf("call %d: %v, want %v", i, got, want)
		}
	}
	if got := (&entry{}).taskAddrs(); got != nil {
		t.Errorf("no tasks: %v", got)
	}
}

// Readers see either the whole old table or the whole new one.
func TestTableSetIsAtomic(t *testing.T) {
	tb := NewTable()
	gen := func(n int) []Service {
		ip := addrs(fmt.Sprintf("10.201.0.%d", n))[0]
		return []Service{{Name: "a", VIP: ip}, {Name: "b", VIP: ip}}
	}
	tb.Set(gen(1))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 2; ; i++ {
			select {
			case <-stop:
				return
			default:
				tb.Set(gen(i%250 + 1))
			}
		}
	}()
	for range 10000 {
		snap := tb.cur.Load()
		if snap.services["a"].vip != snap.services["b"].vip {
			t.Fatal("a snapshot mixes two tables")
		}
	}
	close(stop)
	wg.Wait()
}
