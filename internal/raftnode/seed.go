package raftnode

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// seedTerm is the term of a planted seed: the first, as for a bootstrap.
const seedTerm = 1

// Seed is a state a new member starts from instead of an empty one: a
// cluster restored from a backup. On a Raft dir with no state yet, Start
// writes it into the snapshot store, with a configuration of this member
// alone, before Raft starts: Raft restores the FSM from it as from any
// snapshot and the member elects itself. Nothing is replayed, and the log
// continues after Index. On a Raft dir with state the seed is ignored.
type Seed struct {
	// Data is what the FSM's Restore reads.
	Data []byte
	// Index is the Raft index the data reflects (the state's index); 0
	// counts as 1, since a snapshot cannot sit at index 0.
	Index uint64
}

// Seeded reports whether this start planted the Seed: the caller may drop
// its copy, Raft holds it now.
func (n *Node) Seeded() bool { return n.seeded }

// plantSeed writes the configured seed into snaps when the Raft dir had no
// state (existing is false), and reports whether it did.
func (n *Node) plantSeed(existing bool, snaps raft.SnapshotStore, id raft.ServerID) (bool, error) {
	seed := n.cfg.Seed
	if seed == nil {
		return false, nil
	}
	if existing {
		return false, nil // the caller says so, and drops the seed
	}
	index := max(seed.Index, 1)
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: id, Address: n.transport.LocalAddr()}}}
	sink, err := snaps.Create(raft.SnapshotVersionMax, index, seedTerm, conf, index, n.transport)
	if err != nil {
		return false, fmt.Errorf("raft: create the restored snapshot: %w", err)
	}
	if _, err := sink.Write(seed.Data); err != nil {
		_ = sink.Cancel()
		return false, fmt.Errorf("raft: write the restored snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return false, fmt.Errorf("raft: write the restored snapshot: %w", err)
	}
	n.cfg.Logger.Info("restored state planted as the first Raft snapshot", "module", "raft", "index", index, "bytes", len(seed.Data))
	return true, nil
}
