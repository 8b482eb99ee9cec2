package state

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

// FSM adapts the store to hashicorp/raft. Apply returns the apply's error (or
// nil) as the log's response, which the proposer hands back to the writer.
type FSM struct {
	Store *MemoryStore
}

var _ raft.FSM = (*FSM)(nil)

// Apply decodes and applies one committed log entry.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	var cmd api.StoreCommand
	if err := proto.Unmarshal(l.Data, &cmd); err != nil {
		// A log entry this build cannot decode is skipped rather than
		// crashing every manager on it; the writer sees the error.
		return fmt.Errorf("state: log entry %d cannot be decoded: %w", l.Index, err)
	}
	return f.Store.Apply(l.Index, &cmd)
}

// Snapshot captures the state; Persist encodes it while applies go on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{snap: f.Store.Snapshot()}, nil
}

// Restore replaces the state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("state: read snapshot: %w", err)
	}
	var snap api.StoreSnapshot
	if err := proto.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("state: decode snapshot: %w", err)
	}
	return f.Store.Restore(&snap)
}

type fsmSnapshot struct {
	snap *api.StoreSnapshot
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	data, err := proto.Marshal(s.snap)
	if err == nil {
		_, err = sink.Write(data)
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("state: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// LocalProposer applies commands straight to a store, with no replication:
// for tests of components that write through the store.
type LocalProposer struct {
	Store *MemoryStore
	mu    sync.Mutex
}

// Propose applies cmd at the next index.
func (p *LocalProposer) Propose(_ context.Context, cmd *api.StoreCommand) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Store.Apply(p.Store.Index()+1, proto.Clone(cmd).(*api.StoreCommand))
}

// NewTestStore returns a store that applies its own writes locally.
func NewTestStore() *MemoryStore {
	s := NewMemoryStore(nil)
	s.SetProposer(&LocalProposer{Store: s})
	return s
}
