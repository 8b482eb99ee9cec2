// Package state holds Warren's cluster state: an indexed in-memory store
// (go-memdb) that the Raft FSM feeds, with transactions as callbacks and
// watches. Components read it directly and write through a Proposer, so every
// write is replicated before anyone sees it.
package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
)

// Proposer replicates a command and returns once this store has applied it,
// with the apply's error. The Raft node is one; tests use a local one.
type Proposer interface {
	Propose(ctx context.Context, cmd *api.StoreCommand) error
}

// maxConflictRetries bounds how often Update re-runs a callback whose
// changes lost a race with another writer.
const maxConflictRetries = 5

// MemoryStore is the state. Reads are lock-free snapshots; applies are
// serialised by the FSM.
type MemoryStore struct {
	// mu orders applies and restores against subscriptions, so that
	// ViewAndWatch sees every change either in its view or as an event.
	mu       sync.Mutex
	db       atomic.Pointer[memdb.MemDB]
	index    atomic.Uint64
	changed  atomic.Pointer[chan struct{}]
	events   broadcaster
	proposer Proposer
	now      func() time.Time
}

// NewMemoryStore returns an empty store that writes through p.
func NewMemoryStore(p Proposer) *MemoryStore {
	s := &MemoryStore{proposer: p, now: time.Now}
	s.db.Store(newDB())
	ch := make(chan struct{})
	s.changed.Store(&ch)
	return s
}

func newDB() *memdb.MemDB {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		panic(fmt.Sprintf("state: bad schema: %v", err)) // a programming error
	}
	return db
}

// SetProposer sets where writes go; the manager wires it after Raft starts.
func (s *MemoryStore) SetProposer(p Proposer) { s.proposer = p }

// Index is the Raft index of the last applied change.
func (s *MemoryStore) Index() uint64 { return s.index.Load() }

// View runs fn on a consistent snapshot of the state.
func (s *MemoryStore) View(fn func(ReadTx)) {
	fn(&readTx{txn: s.db.Load().Txn(false), index: s.index.Load()})
}

// ViewAndWatch runs fn on a snapshot and subscribes to every change after
// it, atomically: nothing is missed or seen twice. filter may be nil.
func (s *MemoryStore) ViewAndWatch(filter func(Event) bool, fn func(ReadTx)) *Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fn != nil {
		s.View(fn)
	}
	return s.events.subscribe(filter)
}

// Watch subscribes to changes from now on.
func (s *MemoryStore) Watch(filter func(Event) bool) *Subscription {
	return s.ViewAndWatch(filter, nil)
}

// WaitForIndex blocks until the state index passes min or ctx ends, and
// returns the index then. It is how blocking queries wait.
func (s *MemoryStore) WaitForIndex(ctx context.Context, min uint64) uint64 {
	for {
		ch := *s.changed.Load()
		if idx := s.index.Load(); idx > min {
			return idx
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s.index.Load()
		}
	}
}

// WaitUntil waits until cond holds on the state, or ctx ends, and tells
// whether it held. A manager's state may lag the leader's: this is how a
// reader waits for a change it knows is coming.
func (s *MemoryStore) WaitUntil(ctx context.Context, cond func(ReadTx) bool) bool {
	for {
		// The index is read before the check, so a change landing in
		// between still ends the wait below.
		seen := s.Index()
		var ok bool
		s.View(func(tx ReadTx) { ok = cond(tx) })
		if ok {
			return true
		}
		if s.WaitForIndex(ctx, seen); ctx.Err() != nil {
			return false
		}
	}
}

// Update runs fn in a write transaction, then replicates the changes it made.
// fn sees its own changes. When the changes lose a race with another writer
// (ErrVersionConflict), fn runs again on the newer state, a few times at most.
// fn must not block or do I/O: it holds the store's write lock.
func (s *MemoryStore) Update(ctx context.Context, fn func(Tx) error) error {
	for attempt := 0; ; attempt++ {
		cmd, err := s.stage(fn)
		if err != nil || len(cmd.GetActions()) == 0 {
			return err
		}
		if s.proposer == nil {
			return errors.New("state: store has no proposer")
		}
		err = s.proposer.Propose(ctx, cmd)
		if errors.Is(err, ErrVersionConflict) && attempt < maxConflictRetries {
			continue
		}
		return err
	}
}

func (s *MemoryStore) stage(fn func(Tx) error) (*api.StoreCommand, error) {
	now := s.now()
	txn := s.db.Load().Txn(true)
	defer txn.Abort()
	tx := &writeTx{readTx: readTx{txn: txn, index: s.index.Load()}, now: now}
	if err := fn(tx); err != nil {
		return nil, err
	}
	return &api.StoreCommand{Actions: tx.actions, Time: timestamppb.New(now)}, nil
}

// Apply applies a replicated command at the given Raft index, all or nothing.
// Only the FSM (or a test proposer) calls it.
func (s *MemoryStore) Apply(index uint64, cmd *api.StoreCommand) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := cmd.GetTime().AsTime()
	txn := s.db.Load().Txn(true)
	txn.TrackChanges()
	for _, a := range cmd.GetActions() {
		if err := applyAction(txn, a, index, now); err != nil {
			txn.Abort()
			return err
		}
	}
	changes := txn.Changes()
	txn.Commit()
	s.advance(index)
	events := make([]Event, 0, len(changes))
	for _, c := range changes {
		ev := Event{Index: index}
		switch {
		case c.Created():
			ev.Kind, ev.Object = EventCreate, c.After.(proto.Message)
		case c.Deleted():
			ev.Kind, ev.Object = EventDelete, c.Before.(proto.Message)
		default:
			ev.Kind, ev.Object, ev.Old = EventUpdate, c.After.(proto.Message), c.Before.(proto.Message)
		}
		events = append(events, ev)
	}
	s.events.publish(events)
	return nil
}

func (s *MemoryStore) advance(index uint64) {
	if index > s.index.Load() {
		s.index.Store(index)
	}
	next := make(chan struct{})
	close(*s.changed.Swap(&next))
}

// Snapshot returns the whole state as a message.
func (s *MemoryStore) Snapshot() *api.StoreSnapshot {
	var snap *api.StoreSnapshot
	s.View(func(tx ReadTx) { snap = snapshotOf(tx) })
	return snap
}

func snapshotOf(tx ReadTx) *api.StoreSnapshot {
	snap := &api.StoreSnapshot{Format: 1, Index: tx.Index(), Nodes: tx.ListNodes(), Services: tx.ListServices(), Tasks: tx.ListTasks(All)}
	if c := tx.GetCluster(); c != nil {
		snap.Clusters = []*api.Cluster{c}
	}
	return snap
}

// Restore replaces the whole state with snap. Watchers get EventRestore.
func (s *MemoryStore) Restore(snap *api.StoreSnapshot) error {
	if snap.GetFormat() != 1 {
		return fmt.Errorf("state: snapshot format %d is not supported (this build reads format 1)", snap.GetFormat())
	}
	db := newDB()
	txn := db.Txn(true)
	insert := func(table string, objs []proto.Message) error {
		for _, o := range objs {
			if err := txn.Insert(table, o); err != nil {
				return fmt.Errorf("state: restore %s: %w", table, err)
			}
		}
		return nil
	}
	for table, objs := range map[string][]proto.Message{
		tableCluster: messages(snap.GetClusters()),
		tableNode:    messages(snap.GetNodes()),
		tableService: messages(snap.GetServices()),
		tableTask:    messages(snap.GetTasks()),
	} {
		if err := insert(table, objs); err != nil {
			txn.Abort()
			return err
		}
	}
	txn.Commit()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.db.Store(db)
	s.index.Store(snap.GetIndex())
	s.advance(snap.GetIndex())
	s.events.publish([]Event{{Kind: EventRestore, Index: snap.GetIndex()}})
	return nil
}

func messages[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, o := range in {
		out[i] = o
	}
	return out
}
