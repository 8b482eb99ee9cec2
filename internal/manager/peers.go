package manager

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// Manager visibility, as Docker Swarm shows it: every manager probes the
// other managers' APIs on a short interval and remembers when each last
// answered. Raft's own contact times are known only to the leader; probes
// give every manager (and so whichever one a client asks) a view of its
// own, which is what `node ls` and `cluster info` print.

const (
	defaultPeerProbeInterval = 2 * time.Second
	peerProbeTimeout         = time.Second
	// peerMissedProbes is how many probe intervals a peer may stay silent
	// before it is unreachable: one lost probe is not an outage.
	peerMissedProbes = 3
)

// raftInfo is this manager's view of Raft for `cluster info` and `node ls`:
// Raft's own figures, with each server's API address, whether it leads,
// and whether this manager reached it lately.
func (m *Manager) raftInfo() *api.RaftInfo {
	info := m.raft.Info()
	now := time.Now()
	m.store.View(func(tx state.ReadTx) {
		for _, s := range info.GetServers() {
			s.ApiAddr = tx.GetNode(s.GetId()).GetManagerStatus().GetApiAddr()
		}
	})
	for _, s := range info.GetServers() {
		s.Leader = s.GetId() != "" && s.GetId() == info.GetLeaderId()
		if s.GetId() == m.creds.NodeID {
			if s.ApiAddr == "" { // not recorded in the state yet
				s.ApiAddr = m.advertiseAPI()
			}
			s.Reachable, s.LastContact = true, timestamppb.New(now)
			continue
		}
		if last, ok := m.probes.status(s.GetId(), now); !last.IsZero() {
			s.Reachable, s.LastContact = ok, timestamppb.New(last)
		}
	}
	return info
}

// startPeerProbes probes the other managers until the manager stops.
func (m *Manager) startPeerProbes(ctx context.Context, onStop func(func())) {
	p := &m.probes
	p.start(m.log, m.dialPeer)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx, m.peerTargets)
	}()
	onStop(func() {
		cancel()
		<-done
		p.close()
	})
}

// peerTargets are the other Raft servers, by ID, with their API addresses
// from the state ("" while a new manager's address has not replicated).
func (m *Manager) peerTargets() map[string]string {
	f := m.raft.Raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	out := map[string]string{}
	m.store.View(func(tx state.ReadTx) {
		for _, s := range f.Configuration().Servers {
			if id := string(s.ID); id != m.creds.NodeID {
				out[id] = tx.GetNode(id).GetManagerStatus().GetApiAddr()
			}
		}
	})
	return out
}

// peerProbes holds one connection per other manager and when each last
// answered. Its zero value is usable: raftInfo may ask before it starts.
type peerProbes struct {
	log  *slog.Logger
	dial func(addr string) (*grpc.ClientConn, error)

	mu       sync.Mutex
	interval time.Duration // 0: defaultPeerProbeInterval
	wake     chan struct{}
	peers    map[string]*peer // by Raft server ID
	inflight sync.WaitGroup
}

type peer struct {
	addr        string
	conn        *grpc.ClientConn // nil without an API address
	lastContact time.Time
	probing     bool
	reachable   bool // as last logged: changes are logged, not every probe
}

func (p *peerProbes) start(log *slog.Logger, dial func(string) (*grpc.ClientConn, error)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log, p.dial = log, dial
}

// setInterval changes the probe interval (tests shorten it) and starts
// the next round at once.
func (p *peerProbes) setInterval(d time.Duration) {
	p.mu.Lock()
	p.interval = d
	wake := p.wakeChan()
	p.mu.Unlock()
	select {
	case wake <- struct{}{}:
	default:
	}
}

// wakeChan is made on first use, so that the zero value works. The caller
// holds mu.
func (p *peerProbes) wakeChan() chan struct{} {
	if p.wake == nil {
		p.wake = make(chan struct{}, 1)
	}
	return p.wake
}

// every is the probe interval. The caller holds mu.
func (p *peerProbes) every() time.Duration {
	if p.interval <= 0 {
		return defaultPeerProbeInterval
	}
	return p.interval
}

// status is when the peer last answered (zero: never) and whether that
// was recent enough to call it reachable at now.
func (p *peerProbes) status(id string, now time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.statusLocked(p.peers[id], now)
}

func (p *peerProbes) statusLocked(pr *peer, now time.Time) (time.Time, bool) {
	if pr == nil || pr.lastContact.IsZero() {
		return time.Time{}, false
	}
	return pr.lastContact, now.Sub(pr.lastContact) <= peerMissedProbes*p.every()
}

// run probes targets() every interval until ctx ends.
func (p *peerProbes) run(ctx context.Context, targets func() map[string]string) {
	for {
		p.sync(ctx, targets())
		p.mu.Lock()
		timer, wake := time.NewTimer(p.every()), p.wakeChan()
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-wake:
			timer.Stop()
		}
	}
}

// sync follows the Raft configuration (closing the connections of peers
// that left or moved) and starts a probe of every peer whose last probe
// has finished: a silent peer never delays the others.
func (p *peerProbes) sync(ctx context.Context, targets map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.peers == nil {
		p.peers = map[string]*peer{}
	}
	for id, pr := range p.peers {
		if addr, ok := targets[id]; !ok || addr != pr.addr {
			p.drop(id, pr)
		}
	}
	for id, addr := range targets {
		pr := p.peers[id]
		if pr == nil {
			pr = p.add(id, addr)
		}
		if pr.conn != nil && !pr.probing {
			pr.probing = true
			p.inflight.Add(1)
			go p.probe(ctx, id, pr)
		}
	}
}

// add makes a peer and its (lazy) connection. The caller holds mu.
func (p *peerProbes) add(id, addr string) *peer {
	pr := &peer{addr: addr}
	p.peers[id] = pr
	if addr == "" {
		return pr
	}
	conn, err := p.dial(addr)
	if err != nil {
		p.log.Warn("cannot probe manager", "node.id", id, "api.addr", addr, "err", err)
		return pr
	}
	pr.conn = conn
	return pr
}

// drop forgets a peer and closes its connection. The caller holds mu.
func (p *peerProbes) drop(id string, pr *peer) {
	if pr.conn != nil {
		_ = pr.conn.Close()
	}
	delete(p.peers, id)
}

// probe makes one cheap call and records its outcome.
func (p *peerProbes) probe(ctx context.Context, id string, pr *peer) {
	defer p.inflight.Done()
	cctx, cancel := context.WithTimeout(ctx, peerProbeTimeout)
	_, err := api.NewControlClient(pr.conn).GetVersion(cctx, &api.GetVersionRequest{})
	cancel()
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	pr.probing = false
	// A refusal is an answer too: a manager that has not yet seen this
	// one's promotion in its state refuses it, but is up.
	if err == nil || status.Code(err) == codes.PermissionDenied {
		pr.lastContact = now
	}
	if _, ok := p.statusLocked(pr, now); ok != pr.reachable && ctx.Err() == nil {
		pr.reachable = ok
		if ok {
			p.log.Info("manager reachable", "node.id", id, "api.addr", pr.addr)
		} else {
			p.log.Warn("manager unreachable", "node.id", id, "api.addr", pr.addr, "last.contact", pr.lastContact, "err", err)
		}
	}
}

// close waits for the probes in flight, then closes every connection. Run
// must have returned.
func (p *peerProbes) close() {
	p.inflight.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, pr := range p.peers {
		p.drop(id, pr)
	}
}
