package bridge

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestTaskFiles(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "10.200.3.1/24")
	if err := n.Ensure(); err != nil {
		t.Fatal(err)
	}
	id := "task-" + randHex(3)
	o := AttachOptions{TaskID: id, Address: netip.MustParseAddr("10.200.3.30"), Hostname: "web-1"}
	a, err := n.Attach(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(n.cfg.Dir, id+".d")
	if a.ResolvConf != filepath.Join(dir, "resolv.conf") || a.Hosts != filepath.Join(dir, "hosts") || a.Hostname != filepath.Join(dir, "hostname") {
		t.Fatalf("file paths %+v, want resolv.conf, hosts and hostname in %s", a, dir)
	}
	checkFile(t, a.ResolvConf, "nameserver 10.200.3.1\noptions ndots:0\n")
	checkFile(t, a.Hosts, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.200.3.30\tweb-1\n")
	checkFile(t, a.Hostname, "web-1\n")

	// A running container has the file itself bind-mounted: a change must
	// land in the same inode.
	ino := inode(t, a.ResolvConf)
	o.DNS = netip.MustParseAddr("10.200.3.53")
	if _, err := n.Attach(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	checkFile(t, a.ResolvConf, "nameserver 10.200.3.53\noptions ndots:0\n")
	if got := inode(t, a.ResolvConf); got != ino {
		t.Errorf("resolv.conf inode %d after a change, want %d (rewritten in place)", got, ino)
	}
}

// TestTaskFilesDefaults needs no root: the files are plain writes.
func TestTaskFilesDefaults(t *testing.T) {
	b, err := New(Config{Gateway: netip.MustParsePrefix("10.200.3.1/24"), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	o, err := b.checkAttach(AttachOptions{TaskID: "abc123", Address: netip.MustParseAddr("10.200.3.31")})
	if err != nil {
		t.Fatal(err)
	}
	a := b.attachment(o)
	if err := writeTaskFiles(a, o); err != nil {
		t.Fatal(err)
	}
	checkFile(t, a.ResolvConf, "nameserver 10.200.3.1\noptions ndots:0\n")
	checkFile(t, a.Hosts, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.200.3.31\tabc123\n")
	checkFile(t, a.Hostname, "abc123\n")
}

func checkFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s = %q, want %q", filepath.Base(path), got, want)
	}
}
