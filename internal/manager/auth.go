package manager

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/internal/security/ca"
)

// authorizeNode lets a node open only its own session. Local callers (the
// manager's own agent) have no certificate and are trusted.
func authorizeNode(ctx context.Context, nodeID string) error {
	id, ok := ca.IdentityFromContext(ctx)
	if !ok {
		return nil
	}
	if id.NodeID != nodeID && id.Role != ca.RoleManager {
		return status.Errorf(codes.PermissionDenied, "certificate of node %s cannot open a session as node %s", id.NodeID, nodeID)
	}
	return nil
}

// requireAdmin guards the JSON gateway as the gRPC API is guarded: the TLS
// listener verified the chain; the role must be admin or manager.
func requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "a client certificate of this cluster's CA is required", http.StatusUnauthorized)
			return
		}
		id, err := ca.IdentityFromCert(r.TLS.VerifiedChains[0][0])
		if err != nil || (id.Role != ca.RoleAdmin && id.Role != ca.RoleManager) {
			http.Error(w, fmt.Sprintf("a %s certificate cannot use this API: use an admin certificate", id.Role), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tlsListener listens on addr with TLS.
func tlsListener(addr string, cfg *tls.Config) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return tls.NewListener(l, cfg), nil
}
