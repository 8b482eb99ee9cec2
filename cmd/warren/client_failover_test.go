package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-project/warren/pkg/client"
	"github.com/warren-project/warren/pkg/client/clienttest"
)

// failoverCluster is a fake manager reachable over mutual TLS, a dead
// manager beside it, and an admin bundle for both.
type failoverCluster struct {
	fake         *clienttest.Fake
	live, dead   string
	tlsDir, file string
}

func newFailoverCluster(t *testing.T) failoverCluster {
	t.Helper()
	fake, unix := fakeManager(t)
	warren(t, unix, "service", "create", "web", "--image", "nginx", "-d").wantOK(t)
	live := clienttest.StartTLS(t, fake)
	dead := clienttest.ServeTLS(t, fake, fake.CA())
	dead.Stop()
	tlsDir := filepath.Join(t.TempDir(), "tls")
	if err := os.Mkdir(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return failoverCluster{
		fake: fake, live: live, dead: dead.Host,
		tlsDir: clienttest.WriteAdminBundle(t, fake.CA(), tlsDir), file: client.DefaultManagersFile(tlsDir),
	}
}

func TestServiceListFailsOver(t *testing.T) {
	fc := newFailoverCluster(t)
	r := warren(t, fc.dead+","+fc.live, "--tls-dir", fc.tlsDir, "service", "ls").wantOK(t)
	if !strings.Contains(r.out, "web") {
		t.Fatalf("service ls through the live manager:\n%s", r.out)
	}
	if r.err != "" {
		t.Fatalf("a failover the user need not know of printed:\n%s", r.err)
	}
}

func TestAllManagersDownNamesEach(t *testing.T) {
	fc := newFailoverCluster(t)
	dead2 := clienttest.ServeTLS(t, fc.fake, fc.fake.CA())
	dead2.Stop()
	r := warren(t, fc.dead+","+dead2.Host, "--tls-dir", fc.tlsDir, "service", "ls")
	r.wantError(t, "cannot reach any Warren manager: "+fc.dead+" and "+dead2.Host+" (connection refused); check that the managers are running, or use -H or WARREN_HOST to choose others")
	if strings.Count(r.err, "\n") != 1 {
		t.Fatalf("the error takes more than one line:\n%s", r.err)
	}
}

// The managers a command learns are kept beside the TLS directory: the next
// command, given only a dead manager, reaches a live one through them.
func TestLearntManagersServeTheNextCommand(t *testing.T) {
	fc := newFailoverCluster(t)
	fc.fake.SetManagerAddrs(strings.TrimPrefix(fc.dead, "tcp://"), strings.TrimPrefix(fc.live, "tcp://"))
	warren(t, fc.live, "--tls-dir", fc.tlsDir, "version").wantOK(t)
	if _, err := os.Stat(fc.file); err != nil {
		t.Fatalf("no managers kept beside %s: %v", fc.tlsDir, err)
	}
	if calls := fc.fake.Requests("GetClusterInfo"); len(calls) != 1 {
		t.Fatalf("%d GetClusterInfo calls; want one, to learn the managers", len(calls))
	}
	r := warren(t, fc.dead, "--tls-dir", fc.tlsDir, "service", "ls").wantOK(t)
	if !strings.Contains(r.out, "web") {
		t.Fatalf("service ls through a learnt manager:\n%s", r.out)
	}
}

func TestCorruptManagersFileWarns(t *testing.T) {
	fc := newFailoverCluster(t)
	if err := os.WriteFile(fc.file, []byte("\x00garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := warren(t, fc.live, "--tls-dir", fc.tlsDir, "service", "ls").wantOK(t)
	if !strings.Contains(r.err, "level=WARN") || !strings.Contains(r.err, fc.file) {
		t.Fatalf("no warning naming %s:\n%s", fc.file, r.err)
	}
	if !strings.Contains(r.out, "web") {
		t.Fatalf("service ls with a corrupt managers file:\n%s", r.out)
	}
}

// A command on the local socket never reads the file: learnt managers are
// reached over tcp, with a bundle the user did not ask for.
func TestLocalSocketIgnoresManagersFile(t *testing.T) {
	fc := newFailoverCluster(t)
	if err := os.WriteFile(fc.file, []byte("\x00garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, unix := fakeManager(t)
	r := warren(t, unix, "--tls-dir", fc.tlsDir, "version").wantOK(t)
	if r.err != "" {
		t.Fatalf("stderr:\n%s", r.err)
	}
}
