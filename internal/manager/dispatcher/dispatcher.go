// Package dispatcher is the node-facing side of a manager. Every node keeps
// one long-lived gRPC session with it (Dispatcher.Session): the node
// registers and heartbeats, the dispatcher pushes the node's assignments as
// they change, and the node pushes task status back, which the dispatcher
// writes to the store in batches. Imported image archives reach the nodes
// the same way: the session tells a node which to load, and the node
// fetches them with Dispatcher.FetchImage and reports the images it holds.
// A task goes out with its service's registry credentials, opened as it is
// sent and only to its own node; the store never holds them in the clear.
//
// Heartbeats live in memory only: a node costs no Raft write while it is
// healthy. A node that stays silent for NodeDownAfter is marked DOWN.
package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/keylock"
	"github.com/warren-project/warren/internal/security/seal"
	"github.com/warren-project/warren/internal/state"
)

// Config tunes a Dispatcher. Zero fields take DefaultConfig's values.
type Config struct {
	// HeartbeatPeriod is the interval nodes are told to heartbeat at.
	HeartbeatPeriod time.Duration
	// NodeDownAfter is how long a node may stay silent before it is marked
	// DOWN (default 3 heartbeat periods).
	NodeDownAfter time.Duration

	// Assignment changes are sent once no other change came for BatchQuiet,
	// at most BatchMaxDelay after the first one, or at once when
	// BatchMaxChanges are waiting.
	BatchQuiet      time.Duration
	BatchMaxDelay   time.Duration
	BatchMaxChanges int

	// StatusRetry is the first pause before a failed status write is tried
	// again; it doubles up to StatusRetryMax.
	StatusRetry    time.Duration
	StatusRetryMax time.Duration

	Logger *slog.Logger

	// Authorize checks that the caller may open a session (or fetch an
	// image archive) as nodeID; an error refuses it (PermissionDenied unless
	// the error carries a gRPC status). nil allows everyone: mutual TLS
	// identity goes here.
	Authorize func(ctx context.Context, nodeID string) error

	// Archives are the image archives this manager holds, served to nodes
	// by FetchImage; nil serves none.
	Archives ArchiveOpener
	// Replicate copies an archive this manager lacks from a manager that
	// holds it (nil: only archives held here are served).
	Replicate func(ctx context.Context, a *api.ImageArchive) error
	// ManagerNodeID is this manager's node ID.
	ManagerNodeID string
	// ManagerAddrs are the API addresses of the cluster's managers, told
	// to nodes at each session so they can fail over to any of them.
	ManagerAddrs func() []string

	// Sealer opens services' sealed registry credentials, which go with
	// their tasks to the node running them, and nowhere else. nil sends no
	// credentials.
	Sealer *seal.Sealer
}

// DefaultConfig returns the production settings.
func DefaultConfig() Config {
	return Config{
		HeartbeatPeriod: 5 * time.Second,
		BatchQuiet:      5 * time.Millisecond,
		BatchMaxDelay:   50 * time.Millisecond,
		BatchMaxChanges: 100,
		StatusRetry:     100 * time.Millisecond,
		StatusRetryMax:  5 * time.Second,
		Logger:          slog.Default(),
	}
}

func (c Config) withDefaults() Config {
	def := DefaultConfig()
	setDefault(&c.HeartbeatPeriod, def.HeartbeatPeriod)
	setDefault(&c.NodeDownAfter, 3*c.HeartbeatPeriod)
	setDefault(&c.BatchQuiet, def.BatchQuiet)
	setDefault(&c.BatchMaxDelay, def.BatchMaxDelay)
	setDefault(&c.StatusRetry, def.StatusRetry)
	setDefault(&c.StatusRetryMax, def.StatusRetryMax)
	if c.BatchMaxChanges <= 0 {
		c.BatchMaxChanges = def.BatchMaxChanges
	}
	if c.Logger == nil {
		c.Logger = def.Logger
	}
	return c
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Dispatcher serves node sessions. Register it on a grpc.Server with
// api.RegisterDispatcherServer and run its background work with Run. A
// manager runs it while it leads: Run, Stop and Run again are fine.
type Dispatcher struct {
	api.UnimplementedDispatcherServer

	store     *state.MemoryStore
	cfg       Config
	log       *slog.Logger
	nodeLocks keylock.Map // node status writes (register, mark down): the heartbeat check and the write it decides are one step
	logs      *logBroker
	execs     *execBroker
	maps      *mapCast
	mesh      meshReports

	mu       sync.Mutex
	cur      *term // the current run; nil when not running
	cancel   context.CancelFunc
	done     chan struct{}       // closed when the current Run returns
	sessions map[string]*session // by node ID
}

// term is one run of the dispatcher. Its sessions, heartbeats and queued
// statuses end with it: the next leader's dispatcher starts afresh, and
// nodes resend their statuses when they reconnect.
type term struct {
	ctx      context.Context
	hb       *heartbeats
	statuses *statusQueue
	active   sync.WaitGroup // session handlers
	closing  bool           // guarded by Dispatcher.mu
}

var (
	errReplaced = errors.New("session replaced by a newer session of the same node")
	errStopped  = errors.New("dispatcher stopped")
	errExpired  = errors.New("node missed its heartbeats")
)

// New returns a dispatcher serving the nodes in store.
func New(store *state.MemoryStore, cfg Config) *Dispatcher {
	cfg = cfg.withDefaults()
	return &Dispatcher{
		store:    store,
		cfg:      cfg,
		log:      cfg.Logger.With("module", "dispatcher"),
		sessions: map[string]*session{},
		logs:     newLogBroker(),
		execs:    &execBroker{reqs: map[string]*execRequest{}},
		maps:     newMapCast(),
	}
}

// Run serves until ctx ends or Stop is called: it writes task status, and
// expires nodes that stop heartbeating. Sessions are refused while it does
// not run.
func (d *Dispatcher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tm := &term{ctx: ctx, statuses: newStatusQueue()}
	tm.hb = newHeartbeats(d.cfg.NodeDownAfter, func(nodeID string) { d.markDown(tm, nodeID) })
	done := make(chan struct{})
	defer close(done)
	d.mu.Lock()
	if d.cur != nil {
		d.mu.Unlock()
		return errors.New("dispatcher: already running")
	}
	d.cur, d.cancel, d.done = tm, cancel, done
	d.mu.Unlock()
	d.log.Info("dispatcher started")

	// A node that was READY before this dispatcher took over gets a full
	// heartbeat grace to reconnect, then goes DOWN like any silent node.
	d.armKnownNodes(tm)
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		tm.statuses.run(ctx, d.writeStatuses, d.cfg.StatusRetry, d.cfg.StatusRetryMax, d.log)
	}()
	writer.Add(1)
	go func() {
		defer writer.Done()
		d.runNetworkMap(ctx)
	}()
	<-ctx.Done()

	// Heartbeats stop first: a node must not be marked down because this
	// dispatcher stopped listening to it. Sessions end as ctx did.
	tm.hb.stop()
	d.mu.Lock()
	tm.closing = true
	d.mu.Unlock()
	tm.active.Wait()
	writer.Wait()
	d.mu.Lock()
	d.cur, d.cancel = nil, nil
	d.mu.Unlock()
	d.log.Info("dispatcher stopped")
	return nil
}

// Stop ends every session and waits for Run to return.
func (d *Dispatcher) Stop() {
	d.mu.Lock()
	cancel, done := d.cancel, d.done
	d.mu.Unlock()
	if cancel == nil {
		return // not running
	}
	cancel()
	<-done
}

func (d *Dispatcher) armKnownNodes(tm *term) {
	var ready []string
	d.store.View(func(tx state.ReadTx) {
		for _, n := range tx.ListNodes() {
			if n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY {
				ready = append(ready, n.GetId())
			}
		}
	})
	for _, id := range ready {
		tm.hb.beat(id)
	}
}
