package nodeca_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/nodeca"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/token"
	"github.com/warren-project/warren/internal/state"
)

const clusterID = "cluster-test"

// testManager is a NodeCA served over real TLS on loopback, as a manager
// serves it: its certificate followed by the CA, client certificates
// optional. It records what reached the handlers.
type testManager struct {
	ca    *ca.CA
	store *state.MemoryStore
	addr  string

	mu       sync.Mutex
	joins    int                 // Join calls that reached the server
	lastCSR  []byte              // the CSR of the last Join
	callerSN map[string][]string // node ID → serials of the certificates it called with
}

func newTestManager(t *testing.T, ttl time.Duration) *testManager {
	t.Helper()
	root, err := ca.Generate("test", 0)
	must(t, err)
	m := &testManager{ca: root, store: state.NewTestStore(), callerSN: map[string][]string{}}
	cluster := &api.Cluster{
		Id: clusterID, Meta: &api.Meta{}, Name: "test",
		Spec:          &api.ClusterSpec{NodeCertTtl: durationpb.New(ttl)},
		CaCert:        root.CertPEM(),
		CaFingerprint: root.Fingerprint(),
		JoinSecrets:   &api.JoinSecrets{Worker: token.NewSecret(), Manager: token.NewSecret()},
	}
	must(t, m.store.Update(context.Background(), func(tx state.Tx) error { return tx.Create(cluster) }))

	certPEM, keyPEM, err := root.Issue("manager-1", ca.RoleManager, clusterID, 0, nil)
	must(t, err)
	kp, err := ca.NewKeyPair(append(certPEM, root.CertPEM()...), keyPEM)
	must(t, err)
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(ca.ServerTLSConfig(root.Pool(), kp.Certificate, false))),
		grpc.UnaryInterceptor(m.record))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	m.addr = ln.Addr().String()
	api.RegisterNodeCAServer(srv, nodeca.New(m.store, nodeca.Config{
		CA:           root,
		Logger:       discard(),
		ManagerAddrs: func() []string { return []string{m.addr} },
		DataKey:      func() ([]byte, error) { return []byte("0123456789abcdef0123456789abcdef"), nil },
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return m
}

func (m *testManager) record(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	m.mu.Lock()
	if j, ok := req.(*api.JoinRequest); ok {
		m.joins++
		m.lastCSR = j.GetCsr()
	}
	if id, ok := ca.IdentityFromContext(ctx); ok {
		m.callerSN[id.NodeID] = append(m.callerSN[id.NodeID], peerSerial(ctx))
	}
	m.mu.Unlock()
	return h(ctx, req)
}

func (m *testManager) cluster() *api.Cluster {
	var c *api.Cluster
	m.store.View(func(tx state.ReadTx) { c = tx.GetCluster() })
	return c
}

// token returns a join token of this cluster for role with secret (the
// current one when secret is empty).
func (m *testManager) token(role, secret string) string {
	if secret == "" {
		secret = m.cluster().GetJoinSecrets().GetWorker()
		if role == token.RoleManager {
			secret = m.cluster().GetJoinSecrets().GetManager()
		}
	}
	return token.New(role, m.ca.Cert(), secret).String()
}

func (m *testManager) updateCluster(t *testing.T, fn func(*api.Cluster)) {
	t.Helper()
	must(t, m.store.Update(context.Background(), func(tx state.Tx) error {
		c := tx.GetCluster()
		fn(c)
		return tx.Update(c)
	}))
}

func (m *testManager) nodes() []*api.Node {
	var n []*api.Node
	m.store.View(func(tx state.ReadTx) { n = tx.ListNodes() })
	return n
}

func (m *testManager) node(id string) *api.Node {
	var n *api.Node
	m.store.View(func(tx state.ReadTx) { n = tx.GetNode(id) })
	return n
}

// dial connects with mutual TLS, presenting kp's certificate at each
// handshake (none when kp is nil).
func (m *testManager) dial(t *testing.T, kp *ca.KeyPair) *grpc.ClientConn {
	t.Helper()
	var get func() *tls.Certificate
	if kp != nil {
		get = kp.Certificate
	}
	cfg := ca.ClientTLSConfig(m.ca.Pool(), get, "127.0.0.1")
	conn, err := grpc.NewClient("passthrough:///"+m.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func (m *testManager) serials(nodeID string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.callerSN[nodeID]...)
}

func (m *testManager) csr() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastCSR
}

func (m *testManager) joinCalls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.joins
}

// peerSerial is the serial of the verified certificate the caller presented.
func peerSerial(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return ""
	}
	return info.State.VerifiedChains[0][0].SerialNumber.String()
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
