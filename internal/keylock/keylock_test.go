package keylock

import (
	"sync"
	"testing"
	"time"
)

// One key's holders take turns; another key does not wait for them; and
// a key nobody holds is forgotten.
func TestLock(t *testing.T) {
	var k Map
	unlockA := k.Lock("a")
	got := make(chan string, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); defer k.Lock("a")(); got <- "a" }()
	go func() { defer wg.Done(); defer k.Lock("b")(); got <- "b" }()
	select {
	case g := <-got:
		if g != "b" {
			t.Fatalf("%q got its lock while a was held", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b waited for a's lock")
	}
	unlockA()
	if g := <-got; g != "a" {
		t.Fatalf("got %q, want a once a was unlocked", g)
	}
	wg.Wait()
	if n := k.held(); n != 0 {
		t.Fatalf("%d keys kept after every lock was released", n)
	}
}
