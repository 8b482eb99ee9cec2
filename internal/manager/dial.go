package manager

import (
	"sync"
	"time"

	"github.com/warren-project/warren/internal/security/join"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// dialPeer connects to another manager's API with this manager's
// certificate (grpc.NewClient dials lazily); every manager-to-manager
// connection (to the leader, to peers probed, to copy archives, to join)
// is made here.
//   - Keepalives drop a connection whose host died or was cut off within
//     15 s (managers allow pings every 5 s).
//   - A peer that came back is redialled within a second or so, instead
//     of after gRPC's default backoff of up to two minutes.
func (m *Manager) dialPeer(addr string) (*grpc.ClientConn, error) {
	return join.DialManager(addr, m.creds.CA.Pool(), m.creds.Cert.Certificate, peerConnectParams)
}

// peerConn is one kept connection to another manager, redialled when the
// manager to reach changes.
type peerConn struct {
	mu   sync.Mutex
	addr string
	conn *grpc.ClientConn
}

// to is a connection to addr: the kept one, or a new one made with dial in
// its place.
func (p *peerConn) to(addr string, dial func(string) (*grpc.ClientConn, error)) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil && p.addr == addr {
		return p.conn, nil
	}
	p.closeLocked()
	conn, err := dial(addr)
	if err != nil {
		return nil, err
	}
	p.addr, p.conn = addr, conn
	return conn, nil
}

// close drops the kept connection.
func (p *peerConn) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeLocked()
}

func (p *peerConn) closeLocked() {
	if p.conn != nil {
		_ = p.conn.Close()
		p.conn, p.addr = nil, ""
	}
}

// peerConnectParams redial a manager that came back within a second or so,
// instead of after gRPC's default backoff of up to two minutes.
var peerConnectParams = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
	MinConnectTimeout: 5 * time.Second,
}
