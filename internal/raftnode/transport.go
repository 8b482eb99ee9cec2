package raftnode

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-project/warren/internal/security/ca"
)

// tlsStreamLayer carries Raft over mutual TLS: both ends must present a
// manager certificate of the cluster's CA, so nothing else can join the log.
type tlsStreamLayer struct {
	net.Listener
	client func(serverName string) *tls.Config
}

// newTLSStreamLayer listens on bind. serverTLS and clientTLS come from the
// manager's own certificate; both sides check the peer is a manager.
func newTLSStreamLayer(bind string, serverTLS *tls.Config, clientTLS func(serverName string) *tls.Config) (*tlsStreamLayer, error) {
	l, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("raft: listen on %s: %w", bind, err)
	}
	srv := serverTLS.Clone()
	srv.VerifyConnection = requireManager
	return &tlsStreamLayer{
		Listener: tls.NewListener(l, srv),
		client: func(name string) *tls.Config {
			c := clientTLS(name)
			c.VerifyConnection = requireManager
			return c
		},
	}, nil
}

func (s *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, fmt.Errorf("raft: bad peer address %q: %w", address, err)
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: s.client(host)}
	return d.Dial("tcp", string(address))
}

func requireManager(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("raft: peer has no certificate")
	}
	id, err := ca.IdentityFromCert(cs.PeerCertificates[0])
	if err != nil {
		return err
	}
	if id.Role != ca.RoleManager {
		return fmt.Errorf("raft: peer %s is a %s, only managers take part in Raft", id.NodeID, id.Role)
	}
	return nil
}
