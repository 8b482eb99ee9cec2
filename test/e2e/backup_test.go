package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/testutil"
)

// Disaster recovery with the binary: a backup taken from a running
// manager, restored into a new data dir after the manager is gone, starts
// the same cluster (ID, join tokens, services) under a new manager that
// accepts writes; a corrupt backup is refused and writes nothing.
func TestBackupAndRestore(t *testing.T) {
	c := newCluster(t, "--overlay=false")
	c.importBusybox(testImage)
	c.mustWarren("service", "create", "web", "--image", testImage, "--replicas", "0", "--network", "host")
	info, err := c.client.GetClusterInfo(context.Background(), &api.GetClusterInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(c.mustWarren("cluster", "join-token", "--quiet", "worker"))
	file := filepath.Join(c.dir, "cluster.backup")
	out := c.mustWarren("cluster", "backup", file)
	if !strings.Contains(out, info.GetCluster().GetId()) {
		t.Fatalf("backup output does not name the cluster:\n%s", out)
	}
	if st, err := os.Stat(file); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode %v, want 0600", st.Mode().Perm())
	}
	c.stop()

	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(c.dir, "corrupt.backup")
	if err := os.WriteFile(corrupt, raw[:len(raw)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("/tmp", "wrr")
	if err != nil {
		t.Fatal(err)
	}
	restored := &cluster{t: t, dir: dir, sock: filepath.Join(dir, "warren.sock"), logPath: filepath.Join(dir, "manager.log")}
	t.Cleanup(restored.destroy)
	data := filepath.Join(dir, "data")
	if _, stderr, err := restored.warren("cluster", "restore", corrupt, "--data-dir", data); err == nil || !strings.Contains(stderr, "damaged") {
		t.Fatalf("restoring a cut backup: err %v, stderr %q; want a refusal saying it is damaged", err, stderr)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left %s behind (%v)", data, err)
	}
	if out := restored.mustWarren("cluster", "restore", file, "--data-dir", data); !strings.Contains(out, "import them again") {
		t.Fatalf("restore output does not say to import the images again:\n%s", out)
	}
	restored.args = []string{"cluster", "init", "--data-dir", data, "--socket", restored.sock, "--overlay=false",
		"--listen-addr", testutil.FreeAddr(t), "--raft-addr", testutil.FreeAddr(t), "--rest-addr", "",
		"--containerd-socket", filepath.Join(dir, "none.sock")}
	restored.start()

	got, err := restored.client.GetClusterInfo(context.Background(), &api.GetClusterInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetCluster().GetId() != info.GetCluster().GetId() || got.GetManagerNodeId() == info.GetManagerNodeId() {
		t.Fatalf("restored cluster %s with manager %s; want cluster %s under a new manager (was %s)",
			got.GetCluster().GetId(), got.GetManagerNodeId(), info.GetCluster().GetId(), info.GetManagerNodeId())
	}
	if tok := strings.TrimSpace(restored.mustWarren("cluster", "join-token", "--quiet", "worker")); tok != token {
		t.Fatalf("worker token after restore %q, want the old one %q", tok, token)
	}
	if _, err := restored.client.GetService(context.Background(), &api.GetServiceRequest{Service: "web"}); err != nil {
		t.Fatalf("service web after restore: %v", err)
	}
	// Image archives are not in a backup: the restore says to import them again.
	restored.importBusybox(testImage)
	restored.mustWarren("service", "create", "after", "--detach", "--image", testImage, "--replicas", "0", "--network", "host")
}
