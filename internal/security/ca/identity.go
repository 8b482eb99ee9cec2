package ca

import (
	"context"
	"crypto/x509"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Identity is who a certificate says its holder is.
type Identity struct {
	NodeID    string // CN
	Role      string // OU: RoleManager, RoleWorker or RoleAdmin
	ClusterID string // O
}

// IdentityFromCert reads an Identity from a certificate this package
// issued. It does not verify the certificate; that is the TLS stack's job.
func IdentityFromCert(cert *x509.Certificate) (Identity, error) {
	s := cert.Subject
	if s.CommonName == "" {
		return Identity{}, fmt.Errorf("ca: certificate has no CN (node ID)")
	}
	if len(s.OrganizationalUnit) != 1 || !ValidRole(s.OrganizationalUnit[0]) {
		return Identity{}, fmt.Errorf("ca: certificate for %q has OU %q, want exactly one known role", s.CommonName, s.OrganizationalUnit)
	}
	if len(s.Organization) != 1 || s.Organization[0] == "" {
		return Identity{}, fmt.Errorf("ca: certificate for %q has O %q, want exactly one cluster ID", s.CommonName, s.Organization)
	}
	return Identity{NodeID: s.CommonName, Role: s.OrganizationalUnit[0], ClusterID: s.Organization[0]}, nil
}

// IdentityFromContext returns the Identity of a gRPC caller. It reads only
// verified chains: a certificate the peer merely presented (possible when
// the server lets clients connect without one) proves nothing.
func IdentityFromContext(ctx context.Context) (Identity, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return Identity{}, false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return Identity{}, false
	}
	chains := info.State.VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return Identity{}, false
	}
	id, err := IdentityFromCert(chains[0][0])
	return id, err == nil
}
