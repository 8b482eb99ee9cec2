package logfile

import (
	"context"
	"time"
)

// MergeByTime merges streams that are each in time order into one in time
// order, like the merge step of a merge sort: it holds one item per input,
// so it costs no more memory however long the streams are, and it waits
// for every open input to offer an item before it gives the earliest.
// Items without a time (key's ok false: notices) go out as soon as they
// come. Equal times keep the inputs' order. The output closes when every
// input has closed, or when ctx ends.
func MergeByTime[T any](ctx context.Context, ins []<-chan T, key func(T) (time.Time, bool)) <-chan T {
	out := make(chan T)
	go func() {
		defer close(out)
		heads := make([]*T, len(ins))
		open := make([]bool, len(ins))
		for i := range open {
			open[i] = true
		}
		for {
			next, some := -1, false
			for i := range ins {
				if !open[i] {
					continue
				}
				if heads[i] == nil {
					select {
					case v, ok := <-ins[i]:
						if !ok {
							open[i] = false
							continue
						}
						heads[i] = &v
					case <-ctx.Done():
						return
					}
				}
				some = true
				if next < 0 || earlier(*heads[i], *heads[next], key) {
					next = i
				}
			}
			if !some {
				return
			}
			select {
			case out <- *heads[next]:
				heads[next] = nil
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// earlier tells whether a goes before b: an item without a time goes
// first, as it is not part of the order.
func earlier[T any](a, b T, key func(T) (time.Time, bool)) bool {
	ta, oka := key(a)
	tb, okb := key(b)
	if !oka || !okb {
		return !oka && okb
	}
	return ta.Before(tb)
}
