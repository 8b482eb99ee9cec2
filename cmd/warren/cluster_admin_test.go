package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/token"
	"github.com/warren-project/warren/pkg/client/clienttest"
)

// tokenIn returns the token of a join command printed by join-token.
func tokenIn(t *testing.T, fake *clienttest.Fake, out string) token.Token {
	t.Helper()
	_, rest, ok := strings.Cut(out, "--token ")
	if !ok {
		t.Fatalf("no --token in %q", out)
	}
	tok, err := token.Parse(strings.Fields(rest)[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.CheckCA(fake.CA().Cert()); err != nil {
		t.Fatalf("the printed token does not pin the cluster CA: %v", err)
	}
	return tok
}

func TestJoinToken(t *testing.T) {
	fake, host := fakeManager(t)
	r := warren(t, host, "cluster", "join-token", "worker").wantOK(t)
	tok := tokenIn(t, fake, r.out)
	want := "To add a worker to this cluster, run the following command:\n\n    warren cluster join --token " + tok.String() + " 10.0.0.1:2377\n"
	if r.out != want || tok.Role != token.RoleWorker {
		t.Fatalf("join-token worker printed\n%q\nwant\n%q", r.out, want)
	}
	r = warren(t, host, "cluster", "join-token", "-q", "worker").wantOK(t)
	if r.out != tok.String()+"\n" {
		t.Fatalf("join-token -q printed %q, want the same token alone", r.out)
	}

	r = warren(t, host, "cluster", "join-token", "--rotate", "worker").wantOK(t)
	if !strings.HasPrefix(r.out, "Successfully rotated worker join token.\n\nTo add a worker") {
		t.Fatalf("rotate printed %q", r.out)
	}
	rotated := tokenIn(t, fake, r.out)
	if rotated.Secret == tok.Secret || !rotated.SecretIs(fake.JoinSecret(api.NodeRole_NODE_ROLE_WORKER)) {
		t.Fatalf("after --rotate the printed token %q is not the new secret", rotated.Secret)
	}

	r = warren(t, host, "cluster", "join-token", "manager", "--quiet").wantOK(t)
	if mgr, err := token.Parse(strings.TrimSpace(r.out)); err != nil || mgr.Role != token.RoleManager {
		t.Fatalf("manager token %q: %v", r.out, err)
	}
}

func TestClusterAdminBadInput(t *testing.T) {
	existing := t.TempDir()
	if err := os.WriteFile(filepath.Join(existing, "client.key"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad role", []string{"cluster", "join-token", "admin"}, `invalid role "admin": use worker or manager`},
		{"no role", []string{"cluster", "join-token"}, "requires exactly 1 argument"},
		{"no out", []string{"cluster", "ca", "issue-admin"}, "--out is required"},
		{"short ttl", []string{"cluster", "ca", "issue-admin", "--out", t.TempDir(), "--ttl", "10s"}, "invalid --ttl 10s"},
		{"existing key", []string{"cluster", "ca", "issue-admin", "--out", existing}, "already exists: refusing to overwrite a private key"},
		{"nothing to update", []string{"node", "update", "node-1"}, "nothing to update"},
		{"bad availability", []string{"node", "update", "--availability", "off", "node-1"}, `invalid --availability "off"`},
		{"bad label", []string{"node", "update", "--label-add", "=x", "node-1"}, `invalid --label-add "=x"`},
		{"bad label-rm", []string{"node", "update", "--label-rm", "a=b", "node-1"}, `invalid --label-rm "a=b"`},
		{"pretty and format", []string{"node", "inspect", "--pretty", "--format", "json", "node-1"}, "--pretty and --format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, host := fakeManager(t)
			warren(t, host, tt.args...).wantError(t, tt.want)
			if calls := fake.Calls(); len(calls) != 0 {
				t.Fatalf("the manager got calls %v; want none for bad input", calls)
			}
		})
	}
	if data, _ := os.ReadFile(filepath.Join(existing, "client.key")); string(data) != "old" {
		t.Fatal("a refused issue-admin changed the existing key")
	}
}

func TestIssueAdminWritesUsableBundle(t *testing.T) {
	fake, host := fakeManager(t)
	dir := filepath.Join(t.TempDir(), "bundle")
	r := warren(t, host, "cluster", "ca", "issue-admin", "--out", dir, "--ttl", "1h").wantOK(t)
	if !strings.Contains(r.out, "warren -H tcp://10.0.0.1:2377 --tls-dir "+dir+" node ls") {
		t.Fatalf("issue-admin does not say how to use the bundle:\n%s", r.out)
	}
	checkBundle(t, fake, dir)

	// The bundle opens the mutual-TLS API, as a remote admin would use it.
	tlsHost := clienttest.StartTLS(t, fake)
	r = warren(t, tlsHost, "--tls-dir", dir, "node", "ls").wantOK(t)
	if !strings.Contains(r.out, "node-1") {
		t.Fatalf("node ls over mutual TLS:\n%s", r.out)
	}
	// Issued over TCP, the hint names the address the CLI used.
	dir2 := filepath.Join(t.TempDir(), "bundle2")
	r = warren(t, tlsHost, "--tls-dir", dir, "cluster", "ca", "issue-admin", "--out", dir2).wantOK(t)
	if !strings.Contains(r.out, "warren -H "+tlsHost+" --tls-dir "+dir2) {
		t.Fatalf("issue-admin over TCP names another address:\n%s", r.out)
	}

	// An existing bundle is replaced only with --force.
	oldKey, _ := os.ReadFile(filepath.Join(dir, "client.key"))
	warren(t, host, "cluster", "ca", "issue-admin", "--out", dir).wantError(t, "--force")
	warren(t, host, "cluster", "ca", "issue-admin", "--out", dir, "--force").wantOK(t)
	if newKey, _ := os.ReadFile(filepath.Join(dir, "client.key")); string(newKey) == string(oldKey) {
		t.Fatal("--force did not write a new key")
	}
	checkBundle(t, fake, dir)
}

// checkBundle checks the files, their modes, and that the certificate is an
// admin client certificate of the fake's CA for the key beside it.
func checkBundle(t *testing.T, fake *clienttest.Fake, dir string) {
	t.Helper()
	for name, mode := range map[string]os.FileMode{"ca.crt": 0o644, "client.crt": 0o644, "client.key": 0o600, ".": 0o700} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err != nil {
		t.Fatalf("certificate and key do not match: %v", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if string(caPEM) != string(fake.CA().CertPEM()) {
		t.Fatal("ca.crt is not the cluster CA")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client.crt does not verify against ca.crt: %v", err)
	}
	if id, err := ca.IdentityFromCert(pair.Leaf); err != nil || id.Role != ca.RoleAdmin {
		t.Fatalf("identity %+v, %v: want an admin", id, err)
	}
}
