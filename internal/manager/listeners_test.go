package manager

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/internal/security/ca"
)

// callerContext is a call made with a certificate of role for node id.
func callerContext(t *testing.T, root *ca.CA, id, role string) context.Context {
	t.Helper()
	certPEM, keyPEM, err := root.Issue(id, role, "cluster-1", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.NewKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	state := tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{kp.Leaf()}}}
	return grpcpeer.NewContext(context.Background(), &grpcpeer.Peer{AuthInfo: credentials.TLSInfo{State: state}})
}

// A manager certificate opens the Control API and Raft membership only
// while its node is a manager: a demoted manager keeps a valid
// certificate, but not what it allowed. Sessions and renewals stay open to
// it, so it can learn of its demotion and get a worker's certificate.
func TestAuthorizeFollowsTheNodesRole(t *testing.T) {
	root, err := ca.Generate("test", 0)
	if err != nil {
		t.Fatal(err)
	}
	managers := map[string]bool{"current": true}
	isManager := func(id string) bool { return managers[id] }
	cases := []struct {
		node, role, method string
		code               codes.Code
	}{
		{"current", ca.RoleManager, "/warren.v1.Control/ListServices", codes.OK},
		{"current", ca.RoleManager, "/warren.v1.RaftMembership/Propose", codes.OK},
		{"demoted", ca.RoleManager, "/warren.v1.Control/ListServices", codes.PermissionDenied},
		{"demoted", ca.RoleManager, "/warren.v1.RaftMembership/AddManager", codes.PermissionDenied},
		{"demoted", ca.RoleManager, "/warren.v1.Dispatcher/Session", codes.OK},
		{"demoted", ca.RoleManager, "/warren.v1.NodeCA/RenewCertificate", codes.OK},
		{"admin", ca.RoleAdmin, "/warren.v1.Control/ListServices", codes.OK},
		{"worker", ca.RoleWorker, "/warren.v1.Control/ListServices", codes.PermissionDenied},
	}
	for _, tc := range cases {
		err := authorize(callerContext(t, root, tc.node, tc.role), tc.method, isManager)
		if got := status.Code(err); got != tc.code {
			t.Errorf("%s (%s) calling %s: %v, want %v", tc.node, tc.role, tc.method, err, tc.code)
		}
	}
}
