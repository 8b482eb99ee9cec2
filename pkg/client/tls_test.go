package client_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/testutil"
	"github.com/warren-project/warren/pkg/client"
	"github.com/warren-project/warren/pkg/client/clienttest"
)

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func issue(t *testing.T, parent *testCert, cn string, ips []net.IP, dns []string, usage x509.ExtKeyUsage) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: ips, DNSNames: dns, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCert{cert: cert, key: key, der: der}
}

func (c *testCert) tls(t *testing.T) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.der}, PrivateKey: c.key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startTLS serves a fake on 127.0.0.1 with a certificate for serverNames,
// requiring client certificates from ca; it returns the host and a TLS
// directory holding a valid client certificate.
func startTLS(t *testing.T, serverDNS []string, serverIPs []net.IP) (host, dir string) {
	ca := issue(t, nil, "warren-ca", nil, nil, 0)
	srv := issue(t, ca, "manager", serverIPs, serverDNS, x509.ExtKeyUsageServerAuth)
	cli := issue(t, ca, "admin", nil, nil, x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	creds := credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{srv.tls(t)},
		ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	// A port below the ephemeral range: once a test stops this server, no
	// outgoing connection can take its port, and dialing it is refused.
	lis, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(creds))
	api.RegisterControlServer(gs, clienttest.New())
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	dir = t.TempDir()
	writePEM(t, filepath.Join(dir, client.CAFile), "CERTIFICATE", ca.der)
	writePEM(t, filepath.Join(dir, client.CertFile), "CERTIFICATE", cli.der)
	keyDER, err := x509.MarshalECPrivateKey(cli.key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, client.KeyFile), "EC PRIVATE KEY", keyDER)
	return "tcp://" + lis.Addr().String(), dir
}

func TestMutualTLS(t *testing.T) {
	host, dir := startTLS(t, nil, []net.IP{net.ParseIP("127.0.0.1")})
	c := newClient(t, host, client.WithTLSDir(dir))
	v, err := c.GetVersion(testCtx(t), &api.GetVersionRequest{})
	if err != nil || v.GetVersion() == "" {
		t.Fatalf("GetVersion over mutual TLS = %v, %v", v, err)
	}
}

func TestMutualTLSFromEnvironment(t *testing.T) {
	host, dir := startTLS(t, nil, []net.IP{net.ParseIP("127.0.0.1")})
	t.Setenv(client.TLSDirEnv, dir)
	t.Setenv(client.HostEnv, host)
	c := newClient(t, "")
	if _, err := c.GetVersion(testCtx(t), &api.GetVersionRequest{}); err != nil {
		t.Fatalf("GetVersion with WARREN_HOST and WARREN_TLS_DIR: %v", err)
	}
}

func TestMutualTLSWrongServerName(t *testing.T) {
	host, dir := startTLS(t, []string{"manager.example"}, nil)
	c := newClient(t, host, client.WithTLSDir(dir))
	_, err := c.GetVersion(testCtx(t), &api.GetVersionRequest{})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the Warren manager at "+host+": TLS handshake failed") ||
		!strings.Contains(err.Error(), "127.0.0.1") || !strings.Contains(err.Error(), "check the certificates in "+dir) {
		t.Fatalf("error %v; want a TLS handshake failure naming the host", err)
	}
}
