package nodeca_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/join"
	"github.com/warren-project/warren/internal/security/token"
	"github.com/warren-project/warren/internal/state"
)

// joined is a worker that joined m and saved its credentials in dir.
type joined struct {
	creds *join.Credentials
	kp    *ca.KeyPair
	dir   string
}

func joinWorker(t *testing.T, m *testManager) joined {
	t.Helper()
	creds, err := join.Join(ctxTimeout(t), m.addr, m.token(token.RoleWorker, ""), &api.NodeDescription{Hostname: "w"}, "")
	must(t, err)
	dir := t.TempDir()
	must(t, creds.Save(dir))
	kp, err := creds.KeyPair()
	must(t, err)
	return joined{creds: creds, kp: kp, dir: dir}
}

func (j joined) renewer(t *testing.T, m *testManager, client api.NodeCAClient, cfg join.RenewerConfig) *join.Renewer {
	t.Helper()
	cfg.KeyPair, cfg.DataDir = j.kp, j.dir
	cfg.Client = func(context.Context) (api.NodeCAClient, error) { return client, nil }
	cfg.Logger = discard()
	return join.NewRenewer(cfg)
}

// TestRenewNow renews a one-minute certificate: the node's NotAfter moves
// later, the files match, the store records the expiry, a connection open
// before the renewal keeps working, and a new one uses the new certificate.
func TestRenewNow(t *testing.T) {
	m := newTestManager(t, time.Minute)
	w := joinWorker(t, m)
	oldSerial, oldNotAfter := w.kp.Leaf().SerialNumber.String(), w.kp.NotAfter()
	// A longer lifetime makes "later" visible: NotAfter has one-second resolution.
	m.updateCluster(t, func(c *api.Cluster) { c.Spec.NodeCertTtl = durationpb.New(2 * time.Minute) })

	open := api.NewNodeCAClient(m.dial(t, w.kp))
	r := w.renewer(t, m, open, join.RenewerConfig{})
	must(t, r.RenewNow(ctxTimeout(t)))

	if !w.kp.NotAfter().After(oldNotAfter.Add(30 * time.Second)) {
		t.Fatalf("NotAfter after renewal = %v, want about a minute after %v", w.kp.NotAfter(), oldNotAfter)
	}
	newSerial := w.kp.Leaf().SerialNumber.String()
	onDisk, err := join.Load(w.dir)
	must(t, err)
	diskKP, err := onDisk.KeyPair()
	must(t, err)
	if diskKP.Leaf().SerialNumber.String() != newSerial {
		t.Fatal("the certificate on disk is not the one in use")
	}
	if got := m.node(w.creds.NodeID).GetStatus().GetCertNotAfter().AsTime(); !got.Equal(w.kp.NotAfter()) {
		t.Fatalf("store cert_not_after = %v, want %v", got, w.kp.NotAfter())
	}

	// The connection opened with the old certificate still works...
	must(t, r.RenewNow(ctxTimeout(t)))
	// ...and a new connection presents the current one.
	must(t, w.renewer(t, m, api.NewNodeCAClient(m.dial(t, w.kp)), join.RenewerConfig{}).RenewNow(ctxTimeout(t)))
	got := m.serials(w.creds.NodeID)
	if len(got) != 3 || got[0] != oldSerial || got[1] != oldSerial || got[2] == oldSerial {
		t.Fatalf("certificates the node called with = %v, want the old one (%s) twice on the open connection, then a new one", got, oldSerial)
	}
}

// TestRenewerRun lets Run renew on its own: the clock says the renewal point
// has passed, so the timer fires at once.
func TestRenewerRun(t *testing.T) {
	m := newTestManager(t, time.Minute)
	w := joinWorker(t, m)
	oldSerial := w.kp.Leaf().SerialNumber.String()
	var ahead atomic.Int64 // how far the fake clock runs ahead
	ahead.Store(int64(2 * time.Minute))
	renewed := make(chan time.Time, 1)
	r := w.renewer(t, m, api.NewNodeCAClient(m.dial(t, w.kp)), join.RenewerConfig{
		Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) },
		OnRenew: func(notAfter time.Time) {
			ahead.Store(0) // the next renewal point is real time away again
			select {
			case renewed <- notAfter:
			default:
			}
		},
	})
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case notAfter := <-renewed:
		// >= rather than ==: a second renewal may already have followed.
		if w.kp.NotAfter().Before(notAfter) || w.kp.Leaf().SerialNumber.String() == oldSerial {
			t.Fatalf("OnRenew(%v), but the key pair holds serial %s expiring %v", notAfter, w.kp.Leaf().SerialNumber, w.kp.NotAfter())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the renewer never renewed a certificate past its renewal point")
	}
	r.Stop()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Stop")
	}
}

func TestRenewRefusals(t *testing.T) {
	m := newTestManager(t, time.Hour)
	removed := joinWorker(t, m)
	n := m.node(removed.creds.NodeID)
	must(t, m.store.Update(ctxTimeout(t), func(tx state.Tx) error { return tx.Delete(n) }))
	adminCert, adminKey, err := m.ca.Issue("", ca.RoleAdmin, clusterID, 0, nil)
	must(t, err)
	admin, err := ca.NewKeyPair(adminCert, adminKey)
	must(t, err)
	live := joinWorker(t, m)

	cases := []struct {
		name string
		kp   *ca.KeyPair
		csr  []byte
		code codes.Code
		msg  string
	}{
		{"removed node", removed.kp, nil, codes.PermissionDenied, "was removed from the cluster"},
		{"no certificate", nil, nil, codes.Unauthenticated, "join with a token"},
		{"admin certificate", admin, nil, codes.PermissionDenied, "admin"},
		{"garbage CSR", live.kp, []byte("junk"), codes.InvalidArgument, "CSR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			csr := tc.csr
			if csr == nil {
				key, err := ca.GenerateKey()
				must(t, err)
				csr, err = ca.NewCSR(key, "x")
				must(t, err)
			}
			_, err := api.NewNodeCAClient(m.dial(t, tc.kp)).RenewCertificate(ctxTimeout(t), &api.RenewCertificateRequest{Csr: csr})
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("RenewCertificate = %v, want %v mentioning %q", err, tc.code, tc.msg)
			}
		})
	}
	if m.node(removed.creds.NodeID) != nil {
		t.Fatal("a refused renewal brought a removed node back")
	}
}

// TestRenewerOfRemovedNode: the node side sees the refusal as an error and
// keeps its current certificate and files.
func TestRenewerOfRemovedNode(t *testing.T) {
	m := newTestManager(t, time.Hour)
	w := joinWorker(t, m)
	serial := w.kp.Leaf().SerialNumber.String()
	n := m.node(w.creds.NodeID)
	must(t, m.store.Update(ctxTimeout(t), func(tx state.Tx) error { return tx.Delete(n) }))

	err := w.renewer(t, m, api.NewNodeCAClient(m.dial(t, w.kp)), join.RenewerConfig{}).RenewNow(ctxTimeout(t))
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "was removed") {
		t.Fatalf("RenewNow by a removed node = %v, want PermissionDenied 'was removed'", err)
	}
	kp, err := ca.LoadKeyPair(filepath.Join(w.dir, join.CertsDir), join.KeyPairName)
	must(t, err)
	if w.kp.Leaf().SerialNumber.String() != serial || kp.Leaf().SerialNumber.String() != serial {
		t.Fatal("a refused renewal changed the node's certificate")
	}
}

// A renewal issues the role the state gives the node. Promoted, a worker
// gets a manager certificate and the cluster's keys (join.Promote saves
// them in a manager's layout); its background renewer refuses to swap a
// certificate of another role in. Demoted again, it gets a worker's.
func TestRenewFollowsTheNodesRole(t *testing.T) {
	m := newTestManager(t, time.Hour)
	w := joinWorker(t, m)
	setRole := func(role api.NodeRole) {
		must(t, m.store.Update(ctxTimeout(t), func(tx state.Tx) error {
			n := tx.GetNode(w.creds.NodeID)
			n.Spec.Role, n.Role = role, role
			return tx.Update(n)
		}))
	}
	setRole(api.NodeRole_NODE_ROLE_MANAGER)
	client := api.NewNodeCAClient(m.dial(t, w.kp))
	serial := w.kp.Leaf().SerialNumber.String()
	err := w.renewer(t, m, client, join.RenewerConfig{}).RenewNow(ctxTimeout(t))
	if !errors.Is(err, join.ErrRoleChanged) || w.kp.Leaf().SerialNumber.String() != serial {
		t.Fatalf("the worker's renewer after a promotion: %v (serial changed: %v); want ErrRoleChanged and the certificate kept", err, w.kp.Leaf().SerialNumber.String() != serial)
	}

	must(t, join.Promote(ctxTimeout(t), client, w.dir, []string{m.addr}))
	creds, err := join.Load(w.dir)
	must(t, err)
	kp, err := creds.KeyPair()
	must(t, err)
	if id, _ := ca.IdentityFromCert(kp.Leaf()); creds.Role != ca.RoleManager || id.Role != ca.RoleManager || id.NodeID != w.creds.NodeID {
		t.Fatalf("after Promote: identity role %s, certificate %+v; want a manager certificate of %s", creds.Role, id, w.creds.NodeID)
	}
	if _, err := ca.Load(filepath.Join(w.dir, join.CADir)); err != nil {
		t.Fatalf("the promoted node cannot sign: %v", err)
	}
	if key, err := os.ReadFile(filepath.Join(w.dir, join.DataKeyFile)); err != nil || len(key) != 32 {
		t.Fatalf("data key after Promote: %d bytes, %v", len(key), err)
	}

	setRole(api.NodeRole_NODE_ROLE_WORKER)
	key, err := ca.GenerateKey()
	must(t, err)
	csr, err := ca.NewCSR(key, w.creds.NodeID)
	must(t, err)
	resp, err := api.NewNodeCAClient(m.dial(t, kp)).RenewCertificate(ctxTimeout(t), &api.RenewCertificateRequest{Csr: csr})
	must(t, err)
	demoted, err := ca.NewKeyPair(resp.GetCertificate(), mustPEM(t, key))
	must(t, err)
	if id, _ := ca.IdentityFromCert(demoted.Leaf()); id.Role != ca.RoleWorker || resp.GetManagerSecrets() != nil {
		t.Fatalf("renewal of a demoted manager: role %s, secrets sent: %v; want a worker certificate and no keys", id.Role, resp.GetManagerSecrets() != nil)
	}
}

func mustPEM(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	p, err := ca.EncodeKeyPEM(key)
	must(t, err)
	return p
}
