package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"google.golang.org/grpc"

	"github.com/warren-project/warren/api"
)

// errPoolClosed is returned by a pool's calls after Close.
var errPoolClosed = errors.New("the manager connection is closed: the node is stopping")

// managerPool is the node's way to its managers. Only the Raft leader serves
// node sessions, and the leader changes: the pool knows every manager's
// address and holds one connection at a time, and each time a session has
// ended it moves to the next address, round-robin. A follower refuses the
// session and a dead leader breaks it, so within a few of the agent's
// reconnect attempts the session lands on the leader, whoever that is.
//
// A session ending is seen through the clients Dial returns: the context of
// the session they open is done once the agent is through with it. Other
// calls (a log request's PublishLogs, an exec's ExecAttach, the certificate
// renewal) go over the current connection without moving it, since they
// must reach the manager the session is with.
type managerPool struct {
	log  *slog.Logger
	file string // where the list persists; empty keeps it in memory
	dial func(addr string) (*grpc.ClientConn, error)

	mu    sync.Mutex
	addrs []string
	cur   string           // the manager of conn, or the one dialled next
	conn  *grpc.ClientConn // nil until dialled, and after a move
	// session is the context of the last session opened on conn: kept,
	// because its end is the session's end, and the agent ends it before
	// it dials again, so the next caller sees it without a race. moveOn
	// says the next caller must move on in any case (the session failed,
	// or dialling did).
	session context.Context
	moveOn  bool
	// lastSession is the manager of the last session established, to log
	// when it changes.
	lastSession string
	saved       bool
	closed      bool
}

// newPool starts from addrs (the first one first: the configured or joined
// address) and dials with dial. Learnt lists are saved to file, if not
// empty. It dials nothing yet.
func newPool(addrs []string, file string, dial func(addr string) (*grpc.ClientConn, error), log *slog.Logger) (*managerPool, error) {
	addrs = mergeAddrs(addrs)
	if len(addrs) == 0 {
		return nil, errors.New("no manager address known: pass the manager's address")
	}
	return &managerPool{log: log, file: file, dial: dial, addrs: addrs, cur: addrs[0]}, nil
}

// Dial returns a Dispatcher client on the current connection, first moving
// to the next manager if the last session ended. It is the agent's Dial.
func (p *managerPool) Dial(context.Context) (api.DispatcherClient, error) {
	conn, addr, err := p.current()
	if err != nil {
		return nil, err
	}
	return &trackedClient{DispatcherClient: api.NewDispatcherClient(conn), pool: p, conn: conn, addr: addr}, nil
}

// Conn returns the current connection, for calls outside sessions (the
// certificate renewal), which follow the session's manager.
func (p *managerPool) Conn() (*grpc.ClientConn, error) {
	conn, _, err := p.current()
	return conn, err
}

// Addrs returns the managers known, in the order they are tried.
func (p *managerPool) Addrs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.addrs)
}

// Learn updates the managers known with the ones a session named, and
// saves them. It is the agent's OnManagers.
func (p *managerPool) Learn(named []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	addrs := learnAddrs(p.addrs, named)
	if len(addrs) == 0 {
		return
	}
	changed := !slices.Equal(addrs, p.addrs)
	if changed {
		p.log.Info("managers known", "managers", addrs)
		p.addrs = addrs
	}
	// Saved the first time too: the file then holds the address this start
	// was configured with, first, for starts that name none.
	if p.file == "" || (!changed && p.saved) {
		return
	}
	if err := saveManagers(p.file, addrs); err != nil {
		p.log.Warn("cannot save the managers known; a restart starts from the configured ones", "err", err)
		return
	}
	p.saved = true
}

// Close closes the connection; calls after it fail.
func (p *managerPool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.drop()
}

// current returns the connection to use, moving on first if the last
// session ended, and dialling if there is none.
func (p *managerPool) current() (*grpc.ClientConn, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, "", errPoolClosed
	}
	if p.moveOn || (p.session != nil && p.session.Err() != nil) {
		p.drop()
		p.cur = p.next()
	}
	if p.conn == nil {
		p.log.Debug("connecting to a manager", "manager", p.cur)
		conn, err := p.dial(p.cur)
		if err != nil {
			p.moveOn = true
			return nil, "", fmt.Errorf("manager %s: %w", p.cur, err)
		}
		p.conn = conn
	}
	return p.conn, p.cur, nil
}

// next is the manager after cur; the first one when cur is no longer known.
func (p *managerPool) next() string {
	i := slices.Index(p.addrs, p.cur)
	return p.addrs[(i+1)%len(p.addrs)]
}

// drop closes the connection: a fresh one per manager tried connects at
// once, where a kept one may sit in gRPC's own back-off (up to
// connectTimeout).
func (p *managerPool) drop() {
	if p.conn != nil {
		_ = p.conn.Close()
	}
	p.conn, p.session, p.moveOn = nil, nil, false
}

// opened notes a session opened on conn with ctx.
func (p *managerPool) opened(ctx context.Context, conn *grpc.ClientConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == conn {
		p.session = ctx
	}
}

// failed notes a session on conn refused or broken: the next caller moves
// on even if the session's context lives on (a caller other than the agent).
func (p *managerPool) failed(conn *grpc.ClientConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == conn {
		p.moveOn = true
	}
}

// established logs the manager a session is with, when it changed.
func (p *managerPool) established(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if addr != p.lastSession {
		p.log.Info("session with a manager", "manager", addr, "previous", p.lastSession)
		p.lastSession = addr
	}
}

// trackedClient tells its pool about the sessions opened through it.
type trackedClient struct {
	api.DispatcherClient
	pool *managerPool
	conn *grpc.ClientConn
	addr string
}

func (c *trackedClient) Session(ctx context.Context, opts ...grpc.CallOption) (api.Dispatcher_SessionClient, error) {
	c.pool.opened(ctx, c.conn)
	stream, err := c.DispatcherClient.Session(ctx, opts...)
	if err != nil {
		c.pool.failed(c.conn)
		return nil, err
	}
	return &trackedStream{Dispatcher_SessionClient: stream, client: c}, nil
}

// trackedStream reports the session's first message (the manager accepted
// it) and its end.
type trackedStream struct {
	api.Dispatcher_SessionClient
	client *trackedClient
	once   sync.Once
}

func (s *trackedStream) Recv() (*api.SessionMessage, error) {
	msg, err := s.Dispatcher_SessionClient.Recv()
	if err != nil {
		s.client.pool.failed(s.client.conn)
		return nil, err
	}
	s.once.Do(func() { s.client.pool.established(s.client.addr) })
	return msg, nil
}
