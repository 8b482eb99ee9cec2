package join

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/token"
)

const testCluster = "cluster-test"

// stubCA answers Join by signing the CSR as node-1, or with reply when set,
// over TLS with whatever certificate chain the test chooses. It counts the
// calls that reached it.
type stubCA struct {
	api.UnimplementedNodeCAServer
	ca    *ca.CA
	reply func(*api.JoinRequest) (*api.JoinResponse, error)

	mu    sync.Mutex
	calls int
}

func (s *stubCA) Join(_ context.Context, req *api.JoinRequest) (*api.JoinResponse, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if s.reply != nil {
		return s.reply(req)
	}
	cert, err := s.ca.IssueFromCSR(req.GetCsr(), "node-1", ca.RoleWorker, testCluster, 0)
	if err != nil {
		return nil, err
	}
	return &api.JoinResponse{NodeId: "node-1", ClusterId: testCluster, Role: api.NodeRole_NODE_ROLE_WORKER, Certificate: cert, CaCertificate: s.ca.CertPEM()}, nil
}

func (s *stubCA) joinCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// serve starts s on loopback presenting chain (PEM, leaf first) and key.
func serve(t *testing.T, s *stubCA, chain, key []byte) string {
	t.Helper()
	kp, err := ca.NewKeyPair(chain, key)
	must(t, err)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(ca.ServerTLSConfig(s.ca.Pool(), kp.Certificate, false))))
	api.RegisterNodeCAServer(srv, s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func newCA(t *testing.T) *ca.CA {
	t.Helper()
	c, err := ca.Generate("test", 0)
	must(t, err)
	return c
}

// issue returns a certificate (followed by the CA when withCA) and key.
func issue(t *testing.T, c *ca.CA, nodeID, role string, withCA bool) (chain, key []byte) {
	t.Helper()
	cert, key, err := c.Issue(nodeID, role, testCluster, 0, nil)
	must(t, err)
	if withCA {
		cert = append(cert, c.CertPEM()...)
	}
	return cert, key
}

func workerToken(c *ca.CA) string {
	return token.New(token.RoleWorker, c.Cert(), token.NewSecret()).String()
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mustLeaf(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	c, err := ca.ParseCertPEM(certPEM)
	must(t, err)
	return c
}
