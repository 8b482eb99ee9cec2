package state

import (
	"sync"

	"google.golang.org/protobuf/proto"
)

// EventKind says what happened to an object.
type EventKind int

const (
	EventCreate EventKind = iota + 1
	EventUpdate
	EventDelete
	// EventRestore means the whole state was replaced (a snapshot was
	// restored): watchers must read everything again.
	EventRestore
)

func (k EventKind) String() string {
	switch k {
	case EventCreate:
		return "create"
	case EventUpdate:
		return "update"
	case EventDelete:
		return "delete"
	case EventRestore:
		return "restore"
	}
	return "unknown"
}

// Event is one change to the store. Object is the object after the change
// (before it, for a delete); Old is the object before an update. Both are
// shared: treat them as read-only.
type Event struct {
	Kind   EventKind
	Index  uint64
	Object proto.Message
	Old    proto.Message
}

// Subscription delivers events in order. Its buffer is unbounded so that the
// store never waits for a slow watcher; a watcher that stops reading must
// Cancel.
type Subscription struct {
	C <-chan Event

	filter func(Event) bool
	out    chan Event
	mu     sync.Mutex
	queue  []Event
	wake   chan struct{}
	done   chan struct{}
	once   sync.Once
	cancel func(*Subscription)
}

func newSubscription(filter func(Event) bool, cancel func(*Subscription)) *Subscription {
	out := make(chan Event)
	s := &Subscription{C: out, out: out, filter: filter, wake: make(chan struct{}, 1), done: make(chan struct{}), cancel: cancel}
	go s.pump()
	return s
}

func (s *Subscription) push(ev Event) {
	if s.filter != nil && ev.Kind != EventRestore && !s.filter(ev) {
		return
	}
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Subscription) pump() {
	defer close(s.out)
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, ev := range batch {
			select {
			case s.out <- ev:
			case <-s.done:
				return
			}
		}
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
	}
}

// Cancel stops the subscription and closes C.
func (s *Subscription) Cancel() {
	s.once.Do(func() {
		close(s.done)
		s.cancel(s)
	})
}

// broadcaster fans events out to subscriptions.
type broadcaster struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

func (b *broadcaster) subscribe(filter func(Event) bool) *Subscription {
	s := newSubscription(filter, b.remove)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[*Subscription]struct{}{}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

func (b *broadcaster) remove(s *Subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

func (b *broadcaster) publish(events []Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		for _, ev := range events {
			s.push(ev)
		}
	}
}
