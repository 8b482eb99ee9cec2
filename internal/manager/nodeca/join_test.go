package nodeca_test

import (
	"crypto"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/join"
	"github.com/warren-project/warren/internal/security/token"
	"github.com/warren-project/warren/internal/state"
)

func TestJoin(t *testing.T) {
	cases := []struct {
		name      string
		role      string // token role
		advertise string
		wantRole  api.NodeRole
		wantCert  string
		wantAddr  string
	}{
		{"worker, address seen by the manager", token.RoleWorker, "", api.NodeRole_NODE_ROLE_WORKER, ca.RoleWorker, "127.0.0.1"},
		{"worker with advertise address", token.RoleWorker, "10.0.0.7:2377", api.NodeRole_NODE_ROLE_WORKER, ca.RoleWorker, "10.0.0.7:2377"},
		{"manager token", token.RoleManager, "", api.NodeRole_NODE_ROLE_MANAGER, ca.RoleManager, "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManager(t, time.Hour)
			desc := &api.NodeDescription{
				Hostname:  "edge-1",
				Platform:  &api.Platform{Architecture: "arm64", Os: "linux"},
				Resources: &api.Resources{NanoCpus: 2e9, MemoryBytes: 1 << 30},
			}
			creds, err := join.Join(ctxTimeout(t), m.addr, m.token(tc.role, ""), desc, tc.advertise)
			if err != nil {
				t.Fatalf("Join: %v", err)
			}
			if creds.ClusterID != clusterID || creds.Role != tc.wantCert || len(creds.ManagerAddrs) != 1 || creds.ManagerAddrs[0] != m.addr {
				t.Fatalf("credentials = %s/%s/%v, want cluster %s, role %s, managers [%s]", creds.ClusterID, creds.Role, creds.ManagerAddrs, clusterID, tc.wantCert, m.addr)
			}
			// Only a manager receives the cluster's keys.
			if got := creds.ManagerSecrets; (tc.role == token.RoleManager) != (got != nil && len(got.GetCaKey()) > 0 && len(got.GetDataKey()) == 32) {
				t.Fatalf("manager secrets for a %s token: %v", tc.role, got)
			}
			leaf := checkCert(t, m, creds, tc.wantCert)
			checkNode(t, m.node(creds.NodeID), desc, tc.wantRole, tc.wantAddr, leaf.NotAfter)
		})
	}
}

// checkCert checks the issued certificate names the node and role, chains
// to the CA, and certifies the key of the CSR the node sent.
func checkCert(t *testing.T, m *testManager, creds *join.Credentials, role string) *x509.Certificate {
	t.Helper()
	leaf, err := ca.ParseCertPEM(creds.CertPEM)
	must(t, err)
	id, err := ca.IdentityFromCert(leaf)
	must(t, err)
	if id.NodeID != creds.NodeID || id.Role != role || id.ClusterID != clusterID {
		t.Fatalf("certificate identity = %+v, want node %s, role %s, cluster %s", id, creds.NodeID, role, clusterID)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: m.ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("certificate does not chain to the cluster CA: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(m.csr())
	must(t, err)
	if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
		t.Fatal("the certificate's public key is not the one in the node's CSR")
	}
	key, err := ca.ParseKeyPEM(creds.KeyPEM)
	must(t, err)
	if !key.PublicKey.Equal(leaf.PublicKey) {
		t.Fatal("the node's private key does not match its certificate")
	}
	return leaf
}

func checkNode(t *testing.T, n *api.Node, desc *api.NodeDescription, role api.NodeRole, addr string, notAfter time.Time) {
	t.Helper()
	if n == nil {
		t.Fatal("the joined node is not in the store")
	}
	if n.GetSpec().GetRole() != role || n.GetSpec().GetAvailability() != api.NodeAvailability_NODE_AVAILABILITY_ACTIVE {
		t.Errorf("node spec = %v, want role %v, availability active", n.GetSpec(), role)
	}
	if d := n.GetDescription(); d.GetHostname() != desc.GetHostname() || d.GetPlatform().GetArchitecture() != "arm64" || d.GetResources().GetMemoryBytes() != 1<<30 {
		t.Errorf("node description = %v, want %v", d, desc)
	}
	st := n.GetStatus()
	if st.GetState() != api.NodeState_NODE_STATE_UNKNOWN || !strings.Contains(st.GetMessage(), "waiting for its first session") || st.GetAddr() != addr {
		t.Errorf("node status = %v, want UNKNOWN, waiting for its first session, addr %s", st, addr)
	}
	if !st.GetCertNotAfter().AsTime().Equal(notAfter) {
		t.Errorf("node cert_not_after = %v, want the certificate's %v", st.GetCertNotAfter().AsTime(), notAfter)
	}
}

func TestJoinWithRotatedTokenIsRefused(t *testing.T) {
	m := newTestManager(t, time.Hour)
	old := m.token(token.RoleWorker, "")
	m.updateCluster(t, func(c *api.Cluster) { c.JoinSecrets.Worker = token.NewSecret() })

	_, err := join.Join(ctxTimeout(t), m.addr, old, &api.NodeDescription{Hostname: "late"}, "")
	if !errors.Is(err, join.ErrRefused) || !strings.Contains(err.Error(), "warren cluster join-token worker") {
		t.Fatalf("Join with a rotated-out token: %v, want ErrRefused telling how to print the current token", err)
	}
	if n := m.nodes(); len(n) != 0 {
		t.Fatalf("a refused join left %d nodes in the store", len(n))
	}
	// The current token still works: rotation only refused the old one.
	if _, err := join.Join(ctxTimeout(t), m.addr, m.token(token.RoleWorker, ""), nil, ""); err != nil {
		t.Fatalf("Join with the current token: %v", err)
	}
}

// TestJoinRefusals calls the server directly, bypassing the node side's
// checks, as a hostile or broken client would.
func TestJoinRefusals(t *testing.T) {
	m := newTestManager(t, time.Hour)
	other, err := ca.Generate("other", 0)
	must(t, err)
	key, err := ca.GenerateKey()
	must(t, err)
	csr, err := ca.NewCSR(key, "n")
	must(t, err)
	workerSecret := m.cluster().GetJoinSecrets().GetWorker()
	cases := []struct {
		name  string
		token string
		csr   []byte
		code  codes.Code
		msg   string
	}{
		{"malformed token", "SWMTKN-1-abc", csr, codes.InvalidArgument, "should start with"},
		{"wrong secret", m.token(token.RoleWorker, token.NewSecret()), csr, codes.PermissionDenied, "join-token worker"},
		{"worker secret in a manager token", m.token(token.RoleManager, workerSecret), csr, codes.PermissionDenied, "not valid"},
		{"another cluster's CA", token.New(token.RoleWorker, other.Cert(), workerSecret).String(), csr, codes.PermissionDenied, "another cluster"},
		{"garbage CSR", m.token(token.RoleWorker, ""), []byte("not a csr"), codes.InvalidArgument, "CSR"},
	}
	client := api.NewNodeCAClient(m.dial(t, nil))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Join(ctxTimeout(t), &api.JoinRequest{Token: tc.token, Csr: tc.csr})
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("Join = %v, want %v mentioning %q", err, tc.code, tc.msg)
			}
			if n := m.nodes(); len(n) != 0 {
				t.Fatalf("a refused join left %d nodes in the store", len(n))
			}
		})
	}
}

func TestJoinWithNoClusterYet(t *testing.T) {
	m := newTestManager(t, time.Hour)
	tok := m.token(token.RoleWorker, "")
	c := m.cluster()
	must(t, m.store.Update(ctxTimeout(t), func(tx state.Tx) error { return tx.Delete(c) }))
	_, err := join.Join(ctxTimeout(t), m.addr, tok, nil, "")
	if err == nil || !strings.Contains(err.Error(), "no cluster state yet") {
		t.Fatalf("Join before the cluster exists: %v, want a retryable 'no cluster state yet'", err)
	}
}

// TestJoinRefusesAnotherClustersManager: a token pinning another CA makes
// the node hang up during the handshake, before the token is sent.
func TestJoinRefusesAnotherClustersManager(t *testing.T) {
	m := newTestManager(t, time.Hour)
	other, err := ca.Generate("other", 0)
	must(t, err)
	tok := token.New(token.RoleWorker, other.Cert(), m.cluster().GetJoinSecrets().GetWorker()).String()
	_, err = join.Join(ctxTimeout(t), m.addr, tok, nil, "")
	if !errors.Is(err, join.ErrWrongCA) || !strings.HasPrefix(err.Error(), "refusing to join") {
		t.Fatalf("Join with another cluster's token = %v, want ErrWrongCA", err)
	}
	if n := m.joinCalls(); n != 0 {
		t.Fatalf("the manager received %d Join calls; the token must not leave the node", n)
	}
}
