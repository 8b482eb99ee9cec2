package logfile

import (
	"context"
	"strings"
	"testing"
	"time"
)

type item struct {
	name string
	at   int // seconds after t0; < 0: no time (a notice)
}

func itemKey(i item) (time.Time, bool) { return t0.Add(time.Duration(i.at) * time.Second), i.at >= 0 }

func feed(items ...item) <-chan item {
	ch := make(chan item, len(items))
	for _, i := range items {
		ch <- i
	}
	close(ch)
	return ch
}

func TestMergeByTime(t *testing.T) {
	for _, tt := range []struct {
		name string
		ins  [][]item
		want string
	}{
		{"nothing", nil, ""},
		{"one input", [][]item{{{"a", 1}, {"b", 2}}}, "a b"},
		{"interleaved", [][]item{{{"a1", 1}, {"a3", 3}, {"a5", 5}}, {{"b2", 2}, {"b4", 4}}}, "a1 b2 a3 b4 a5"},
		{"ties keep input order", [][]item{{{"a", 1}}, {{"b", 1}}, {{"c", 1}}}, "a b c"},
		{"an empty input", [][]item{{}, {{"b", 1}}}, "b"},
		{"notices go first", [][]item{{{"a", 1}, {"a2", 2}}, {{"down", -1}}}, "down a a2"},
		{"a notice between lines", [][]item{{{"a", 1}, {"note", -1}, {"a3", 3}}, {{"b", 2}}}, "a note b a3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ins []<-chan item
			for _, in := range tt.ins {
				ins = append(ins, feed(in...))
			}
			var got []string
			for i := range MergeByTime(context.Background(), ins, itemKey) {
				got = append(got, i.name)
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("merged %q; want %q", got, tt.want)
			}
		})
	}
}

func TestMergeByTimeEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	open := make(chan item) // never closed, never sends
	out := MergeByTime(ctx, []<-chan item{open}, itemKey)
	cancel()
	select {
	case _, ok := <-out:
		if ok {
			t.Fatal("an item from nowhere")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the merge did not end with its context")
	}
}
