// Package nodeca admits nodes to the cluster and renews their certificates:
// the manager side of api.NodeCA. A joining node proves itself with a join
// token and sends only a CSR; the server records the node in the store and
// signs a certificate whose subject names the node ID and role. It holds no
// state of its own: the cluster (its join secrets and certificate lifetime)
// and the nodes live in the store.
//
// Codes it returns: InvalidArgument (malformed token or CSR), PermissionDenied
// (token refused, node removed, wrong cluster), Unauthenticated (renewal with
// no certificate), Unavailable (no cluster yet, or the store could not
// replicate), FailedPrecondition (this manager cannot sign).
package nodeca

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/token"
	"github.com/warren-project/warren/internal/state"
)

// Config of the node CA server.
type Config struct {
	// CA is the cluster root with its key: only a manager can admit nodes.
	CA     *ca.CA
	Logger *slog.Logger
	// ManagerAddrs lists the managers a new node may talk to; it is sent in
	// every JoinResponse. Nil means none beyond the one the node dialled.
	ManagerAddrs func() []string
	// DataKey returns the key that seals secrets in the state, which a
	// joining manager receives with the root key. Nil refuses manager
	// tokens.
	DataKey func() ([]byte, error)
	// Now is the clock, for logs; time.Now by default.
	Now func() time.Time
}

// Server implements api.NodeCAServer.
type Server struct {
	api.UnimplementedNodeCAServer
	store *state.MemoryStore
	cfg   Config
	log   *slog.Logger
}

var _ api.NodeCAServer = (*Server)(nil)

// New returns a node CA server reading and writing store.
func New(store *state.MemoryStore, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ManagerAddrs == nil {
		cfg.ManagerAddrs = func() []string { return nil }
	}
	return &Server{store: store, cfg: cfg, log: cfg.Logger.With("module", "nodeca")}
}

// errNotValid is what a refused token gets. It does not say whether the
// secret was rotated or never valid: both mean "get the current token".
const errNotValid = "the join token is not valid (rotated, or from another cluster): print the current one with `warren cluster join-token worker` on a manager"

// cluster reads the cluster object, or says why there is none.
func (s *Server) cluster() (*api.Cluster, error) {
	var c *api.Cluster
	s.store.View(func(tx state.ReadTx) { c = tx.GetCluster() })
	if c == nil {
		return nil, status.Error(codes.Unavailable, "this manager has no cluster state yet: try again in a moment")
	}
	return c, nil
}

// checkSigner refuses early when this manager holds no root key, rather
// than after the caller's request has been checked and a node recorded.
func (s *Server) checkSigner() error {
	if s.cfg.CA == nil || !s.cfg.CA.CanSign() {
		return status.Error(codes.FailedPrecondition, "this manager cannot sign certificates (it holds no CA key): join through another manager")
	}
	return nil
}

// CertTTL is the lifetime of the node certificates cluster c issues.
func CertTTL(c *api.Cluster) time.Duration {
	if d := c.GetSpec().GetNodeCertTtl(); d != nil && d.AsDuration() > 0 {
		return d.AsDuration()
	}
	return ca.DefaultCertTTL
}

// tokenRole maps a token's role letter to the node role and certificate role.
func tokenRole(t token.Token) (api.NodeRole, string) {
	if t.Role == token.RoleManager {
		return api.NodeRole_NODE_ROLE_MANAGER, ca.RoleManager
	}
	return api.NodeRole_NODE_ROLE_WORKER, ca.RoleWorker
}

// secretFor is the secret a token of role must carry.
func secretFor(c *api.Cluster, role string) string {
	if role == token.RoleManager {
		return c.GetJoinSecrets().GetManager()
	}
	return c.GetJoinSecrets().GetWorker()
}

// issueStatus maps an error from the CA: a bad CSR is the caller's fault.
func issueStatus(nodeID string, err error) error {
	if errors.Is(err, ca.ErrInvalid) {
		return status.Errorf(codes.InvalidArgument, "certificate request refused: %v; the node should send a CSR for a fresh ECDSA P-256 key", err)
	}
	if errors.Is(err, ca.ErrNoSigningKey) {
		return status.Error(codes.FailedPrecondition, "this manager cannot sign certificates (it holds no CA key): try another manager")
	}
	return status.Errorf(codes.Internal, "sign a certificate for node %s: %v", nodeID, err)
}

// storeStatus maps a failed store write. Most are leadership changes or
// replication timeouts, after which the same call may succeed.
func storeStatus(what string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: %v", what, err)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: %v", what, err)
	}
	return status.Errorf(codes.Unavailable, "%s: %v; try again", what, err)
}

// notAfter reads the expiry of a PEM certificate the CA just issued.
func notAfter(certPEM []byte) (time.Time, error) {
	cert, err := ca.ParseCertPEM(certPEM)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse the certificate just issued: %w", err)
	}
	return cert.NotAfter, nil
}
