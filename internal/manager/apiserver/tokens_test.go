package apiserver

import (
	"bytes"
	"context"
	"crypto/x509"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/token"
	"github.com/warren-project/warren/internal/state"
)

func joinToken(t *testing.T, s *Server, role api.NodeRole, rotate bool) token.Token {
	t.Helper()
	resp, err := s.GetJoinToken(context.Background(), &api.GetJoinTokenRequest{Role: role, Rotate: rotate})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetManagerAddrs()) != 1 || resp.GetManagerAddrs()[0] != "10.0.0.1:2377" {
		t.Errorf("manager addrs = %q, want the configured one", resp.GetManagerAddrs())
	}
	tok, err := token.Parse(resp.GetToken())
	if err != nil {
		t.Fatalf("token %q does not parse: %v", resp.GetToken(), err)
	}
	return tok
}

func storedSecrets(store *state.MemoryStore) *api.JoinSecrets {
	var js *api.JoinSecrets
	store.View(func(tx state.ReadTx) { js = tx.GetCluster().GetJoinSecrets() })
	return js
}

func TestJoinTokens(t *testing.T) {
	s, store, root := newAdminServer(t)
	worker := joinToken(t, s, api.NodeRole_NODE_ROLE_WORKER, false)
	if worker.Role != token.RoleWorker || worker.CheckCA(root.Cert()) != nil {
		t.Fatalf("worker token %+v: want role W pinning the cluster CA", worker)
	}
	if !worker.SecretIs(storedSecrets(store).GetWorker()) {
		t.Fatal("the worker token's secret is not the stored one")
	}
	// Asking again changes nothing.
	index := store.Index()
	if again := joinToken(t, s, api.NodeRole_NODE_ROLE_WORKER, false); again != worker {
		t.Fatalf("second token %v differs from the first %v", again, worker)
	}
	if store.Index() != index {
		t.Fatal("reading an existing token wrote to the state")
	}

	manager := joinToken(t, s, api.NodeRole_NODE_ROLE_MANAGER, false)
	if manager.Role != token.RoleManager || manager.Secret == worker.Secret {
		t.Fatalf("manager token %+v: want role M with its own secret", manager)
	}

	rotated := joinToken(t, s, api.NodeRole_NODE_ROLE_WORKER, true)
	js := storedSecrets(store)
	if rotated.Secret == worker.Secret || worker.SecretIs(js.GetWorker()) || !rotated.SecretIs(js.GetWorker()) {
		t.Fatalf("after rotation: old %q, new %q, stored %q; want only the new one to match", worker.Secret, rotated.Secret, js.GetWorker())
	}
	if rotated.CheckCA(root.Cert()) != nil {
		t.Fatal("the rotated token does not pin the cluster CA")
	}
	if !manager.SecretIs(js.GetManager()) {
		t.Fatal("rotating the worker token changed the manager's")
	}
}

func TestJoinTokenBadRole(t *testing.T) {
	s, store, _ := newAdminServer(t)
	for _, role := range []api.NodeRole{api.NodeRole_NODE_ROLE_UNSPECIFIED, 7} {
		_, err := s.GetJoinToken(context.Background(), &api.GetJoinTokenRequest{Role: role})
		wantCode(t, err, codes.InvalidArgument, "use worker or manager")
	}
	if storedSecrets(store) != nil {
		t.Fatal("a refused request stored secrets")
	}
}

func TestRedactCluster(t *testing.T) {
	in := &api.Cluster{Id: "c", Name: "warren", CaCert: []byte("pem"), JoinSecrets: &api.JoinSecrets{Worker: "w", Manager: "m"}}
	orig := proto.Clone(in)
	out := redactCluster(in)
	if out.GetJoinSecrets() != nil || out.GetName() != "warren" || !bytes.Equal(out.GetCaCert(), []byte("pem")) {
		t.Fatalf("redacted = %v, want everything but the secrets", out)
	}
	if !proto.Equal(in, orig) {
		t.Fatal("redactCluster changed its argument (the store's copy may be shared)")
	}
	if redactCluster(nil) != nil {
		t.Fatal("redactCluster(nil) is not nil")
	}
}

func newCSR(t *testing.T) []byte {
	t.Helper()
	key, err := ca.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ca.NewCSR(key, "someone-else", "evil.example")
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func TestIssueAdminCertificate(t *testing.T) {
	s, _, root := newAdminServer(t)
	cases := []struct {
		name string
		ttl  *durationpb.Duration
		want time.Duration
	}{
		{"default lifetime", nil, ca.DefaultCertTTL},
		{"short lifetime", durationpb.New(time.Hour), time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := s.IssueAdminCertificate(context.Background(), &api.IssueAdminCertificateRequest{Csr: newCSR(t), Ttl: c.ttl})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(resp.GetCaCertificate(), root.CertPEM()) {
				t.Fatal("the answer does not carry the cluster CA")
			}
			cert, err := ca.ParseCertPEM(resp.GetCertificate())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: root.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Fatalf("certificate does not verify as a client of the cluster CA: %v", err)
			}
			id, err := ca.IdentityFromCert(cert)
			if err != nil || id.Role != ca.RoleAdmin || id.ClusterID != "cluster-1" || id.NodeID == "someone-else" {
				t.Fatalf("identity = %+v, %v; want a fresh admin of cluster-1", id, err)
			}
			if life := time.Until(cert.NotAfter); life > c.want || life < c.want-time.Minute {
				t.Fatalf("certificate lives %v, want about %v", life, c.want)
			}
		})
	}
}

func TestIssueAdminCertificateRefused(t *testing.T) {
	s, _, _ := newAdminServer(t)
	noCA := New(Config{Store: s.cfg.Store, Images: fakeImages{}})
	cases := []struct {
		name string
		srv  *Server
		req  *api.IssueAdminCertificateRequest
		code codes.Code
		want string
	}{
		{"no csr", s, &api.IssueAdminCertificateRequest{}, codes.InvalidArgument, "no certificate request"},
		{"bad csr", s, &api.IssueAdminCertificateRequest{Csr: []byte("junk")}, codes.InvalidArgument, "CSR"},
		{"ttl too short", s, &api.IssueAdminCertificateRequest{Csr: newCSR(t), Ttl: durationpb.New(time.Second)}, codes.InvalidArgument, "shorter than"},
		{"no CA key", noCA, &api.IssueAdminCertificateRequest{Csr: newCSR(t)}, codes.FailedPrecondition, "cannot issue"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.srv.IssueAdminCertificate(context.Background(), c.req)
			wantCode(t, err, c.code, c.want)
		})
	}
}
