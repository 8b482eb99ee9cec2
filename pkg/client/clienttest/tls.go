package clienttest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/testutil"
)

// StartTLS serves f on a loopback TCP port with mutual TLS under the fake's
// CA, as a real manager's remote listener does: only a client certificate
// of that CA gets in (an admin bundle from IssueAdminCertificate, say). It
// returns the host ("tcp://127.0.0.1:PORT").
func StartTLS(t testing.TB, f *Fake) string {
	t.Helper()
	return ServeTLS(t, f, f.CA()).Host
}

// Server is a manager served on loopback with mutual TLS, which a test may
// stop as a manager dies.
type Server struct {
	// Host is where it listens: "tcp://127.0.0.1:PORT".
	Host string

	gs *grpc.Server
}

// Stop closes the listener and every connection at once, as a crash does.
// The port refuses connections afterwards.
func (s *Server) Stop() { s.gs.Stop() }

// ServeTLS serves srv (a Fake, or any partial api.ControlServer) on a
// loopback port with a manager certificate of root, requiring client
// certificates of root, until Stop or the end of the test. Several servers
// of one root (one Fake's CA) are managers of one cluster: an admin bundle
// from WriteAdminBundle reaches them all.
func ServeTLS(t testing.TB, srv api.ControlServer, root *ca.CA) *Server {
	t.Helper()
	certPEM, keyPEM, err := root.Issue("fake-manager", ca.RoleManager, ClusterID, 0, nil)
	if err != nil {
		t.Fatalf("clienttest: issue the manager certificate: %v", err)
	}
	pair, err := ca.NewKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("clienttest: %v", err)
	}
	// A port below the ephemeral range: once a test stops this server, no
	// outgoing connection can take its port, and dialing it is refused.
	lis, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatalf("clienttest: listen on loopback: %v", err)
	}
	creds := credentials.NewTLS(ca.ServerTLSConfig(root.Pool(), pair.Certificate, true))
	// serve stops it at the end of the test.
	return &Server{Host: "tcp://" + lis.Addr().String(), gs: serve(t, srv, lis, grpc.Creds(creds))}
}

// WriteAdminBundle writes an admin's ca.crt, client.crt and client.key of
// root into dir, as `warren cluster ca issue-admin` does, and returns dir.
func WriteAdminBundle(t testing.TB, root *ca.CA, dir string) string {
	t.Helper()
	certPEM, keyPEM, err := root.Issue("", ca.RoleAdmin, ClusterID, 0, nil)
	if err != nil {
		t.Fatalf("clienttest: issue an admin certificate: %v", err)
	}
	if err := ca.SaveKeyPair(dir, "client", certPEM, keyPEM); err != nil {
		t.Fatalf("clienttest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), root.CertPEM(), 0o644); err != nil {
		t.Fatalf("clienttest: %v", err)
	}
	return dir
}
