package state

import (
	"context"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
)

// WaitUntil returns once a later write makes the condition hold, and
// gives up, saying so, when its context ends first.
func TestWaitUntil(t *testing.T) {
	s := NewTestStore()
	hasNode := func(tx ReadTx) bool { return tx.GetNode("n1") != nil }
	go func() {
		time.Sleep(20 * time.Millisecond) // the wait must be under way
		_ = s.Update(context.Background(), func(tx Tx) error { return tx.Create(&api.Node{Id: "n1", Meta: &api.Meta{}}) })
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !s.WaitUntil(ctx, hasNode) {
		t.Fatal("WaitUntil gave up although the node was created")
	}
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if s.WaitUntil(short, func(tx ReadTx) bool { return tx.GetNode("n2") != nil }) {
		t.Fatal("WaitUntil reported a node nobody created")
	}
}
