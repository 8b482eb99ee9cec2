package clienttest

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/warren-project/warren/internal/security/ca"
)

// StartTLS serves f on a loopback TCP port with mutual TLS under the fake's
// CA, as a real manager's remote listener does: only a client certificate
// of that CA gets in (an admin bundle from IssueAdminCertificate, say). It
// returns the host ("tcp://127.0.0.1:PORT").
func StartTLS(t testing.TB, f *Fake) string {
	t.Helper()
	root := f.CA()
	certPEM, keyPEM, err := root.Issue("fake-manager", ca.RoleManager, ClusterID, 0, nil)
	if err != nil {
		t.Fatalf("clienttest: issue the manager certificate: %v", err)
	}
	pair, err := ca.NewKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("clienttest: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("clienttest: listen on loopback: %v", err)
	}
	creds := credentials.NewTLS(ca.ServerTLSConfig(root.Pool(), pair.Certificate, true))
	serve(t, f, lis, grpc.Creds(creds))
	return "tcp://" + lis.Addr().String()
}
