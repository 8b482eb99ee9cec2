package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/backupfile"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/pkg/client/clienttest"
)

// backupFake is a fake manager whose BackupCluster sends data in small
// chunks, then fails with failWith when set.
type backupFake struct {
	*clienttest.Fake
	data     []byte
	failWith error
}

func (f *backupFake) BackupCluster(_ *api.BackupClusterRequest, stream grpc.ServerStreamingServer[api.BackupChunk]) error {
	for rest := f.data; len(rest) > 0; {
		n := min(100, len(rest))
		if err := stream.Send(&api.BackupChunk{Data: rest[:n]}); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return f.failWith
}

func testBackupBytes(t *testing.T) []byte {
	t.Helper()
	root, err := ca.Generate("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := root.KeyPEM()
	var buf bytes.Buffer
	_, err = backupfile.Write(&buf, &backupfile.Backup{
		State: &api.StoreSnapshot{Format: 1, Index: 77,
			Clusters: []*api.Cluster{{Id: "cluster-1", CaFingerprint: root.Fingerprint(),
				ImageArchives: []*api.ImageArchive{{Digest: "sha256:abc", Refs: []string{"warren.local/app:1"}}}}},
			Nodes: []*api.Node{{Id: "old-manager-1", Spec: &api.NodeSpec{Role: api.NodeRole_NODE_ROLE_MANAGER},
				Description: &api.NodeDescription{Hostname: "m1"}}},
			Services: []*api.Service{{Id: "s1"}, {Id: "s2"}}},
		CACert: root.CertPEM(), CAKey: key, DataKey: bytes.Repeat([]byte{3}, 32),
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func startBackupFake(t *testing.T, data []byte, failWith error) string {
	t.Helper()
	return clienttest.Start(t, &backupFake{Fake: clienttest.New(), data: data, failWith: failWith})
}

// leftovers are the files in dir other than want: temporary files a
// failed backup must not leave.
func leftovers(t *testing.T, dir string, want ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !slices.Contains(want, e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestBackupWritesFile(t *testing.T) {
	data := testBackupBytes(t)
	host := startBackupFake(t, data, nil)
	dir := t.TempDir()
	file := filepath.Join(dir, "c.backup")
	r := warren(t, host, "cluster", "backup", file).wantOK(t)
	for _, want := range []string{"CLUSTER ID", "cluster-1", "77", file, "warren cluster restore " + file + " --data-dir DIR"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("backup output lacks %q:\n%s", want, r.out)
		}
	}
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the file holds %d bytes (%v), want the %d the manager sent", len(got), err, len(data))
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the backup has mode %v, want 0600", fi.Mode().Perm())
	}

	// An existing file is replaced only with --force.
	warren(t, host, "cluster", "backup", file).wantError(t, "already exists: choose another name, or use --force")
	r = warren(t, host, "cluster", "backup", "--force", "--format", "json", file).wantOK(t)
	var s backupSummary
	if err := json.Unmarshal([]byte(r.out), &s); err != nil {
		t.Fatalf("--format json printed %q: %v", r.out, err)
	}
	if s.ClusterID != "cluster-1" || s.StateIndex != 77 || s.Nodes != 1 || s.Services != 2 || s.Size != int64(len(data)) || s.File != file {
		t.Fatalf("json summary = %+v", s)
	}
	if extra := leftovers(t, dir, "c.backup"); len(extra) != 0 {
		t.Fatalf("backups left %v beside the file", extra)
	}
}

// A backup that fails, or that does not read back, leaves no file.
func TestBackupFailureWritesNothing(t *testing.T) {
	good := testBackupBytes(t)
	damaged := bytes.Clone(good)
	damaged[len(damaged)/2] ^= 0xff
	tests := []struct {
		name     string
		data     []byte
		failWith error
		want     string
	}{
		{"error mid-stream", good[:len(good)/2], status.Error(codes.Unavailable, "no leader"), "backup failed"},
		{"damaged", damaged, nil, "does not read back"},
		{"cut short", good[:len(good)-10], nil, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := startBackupFake(t, tt.data, tt.failWith)
			dir := t.TempDir()
			warren(t, host, "cluster", "backup", filepath.Join(dir, "c.backup")).wantError(t, tt.want)
			if extra := leftovers(t, dir); len(extra) != 0 {
				t.Fatalf("a failed backup left %v", extra)
			}
		})
	}
	warren(t, startBackupFake(t, good, nil), "cluster", "backup", "/nonexistent-dir/c.backup").wantError(t, "does not exist")
}

func TestRestoreCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.backup")
	if err := os.WriteFile(file, testBackupBytes(t), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	r := warren(t, "unix:///nonexistent.sock", "cluster", "restore", file, "--data-dir", dir).wantOK(t)
	for _, want := range []string{"Restored cluster cluster-1 into " + dir, "old-manager-1", "m1", "warren node rm", "import them again", "warren.local/app:1",
		"warren cluster init --data-dir " + dir} {
		if !strings.Contains(r.out, want) {
			t.Errorf("restore output lacks %q:\n%s", want, r.out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "identity.json")); err != nil {
		t.Fatalf("restore wrote no identity: %v", err)
	}
	warren(t, "unix:///nonexistent.sock", "cluster", "restore", file, "--data-dir", dir).wantError(t, "is the data dir of a manager")
}
