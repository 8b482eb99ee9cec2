package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/backupfile"
	"github.com/warren-project/warren/internal/runtime/fake"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/pkg/client"
)

// backupThrough fetches a backup through the API, as the CLI does.
func backupThrough(t *testing.T, c *client.Client) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := c.Backup(ctx, &buf); err != nil {
		t.Fatalf("backup: %v", err)
	}
	return buf.Bytes()
}

// clusterFacts are what must survive a backup and restore.
type clusterFacts struct {
	clusterID, caFingerprint, workerToken, managerToken string
	services                                            map[string]*api.Service
}

func factsOf(t *testing.T, c *client.Client) clusterFacts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := c.GetClusterInfo(ctx, &api.GetClusterInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	f := clusterFacts{clusterID: info.GetCluster().GetId(), caFingerprint: info.GetCluster().GetCaFingerprint(), services: map[string]*api.Service{}}
	for role, tok := range map[api.NodeRole]*string{api.NodeRole_NODE_ROLE_WORKER: &f.workerToken, api.NodeRole_NODE_ROLE_MANAGER: &f.managerToken} {
		resp, err := c.GetJoinToken(ctx, &api.GetJoinTokenRequest{Role: role})
		if err != nil {
			t.Fatal(err)
		}
		*tok = resp.GetToken()
	}
	svcs, err := c.ListServices(ctx, &api.ListServicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs.GetServices() {
		f.services[s.GetSpec().GetName()] = s
	}
	return f
}

// A backup taken through the API of a running manager, restored into a
// new data dir, starts the same cluster there: same ID, CA, join tokens
// and services, under a new node ID, leading alone, accepting writes.
func TestBackupRestoreRoundTrip(t *testing.T) {
	exec := fake.New()
	exec.AddImage(image)
	first := startManager(t, shortDir(t), exec)
	c := first.localClient(t)
	web := createService(t, c, "web", 2)
	createService(t, c, "api", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	spec := proto.Clone(web.GetSpec()).(*api.ServiceSpec)
	spec.Labels = map[string]string{"tier": "front"}
	if _, err := c.UpdateService(ctx, &api.UpdateServiceRequest{Service: web.GetId(), Spec: spec}); err != nil {
		t.Fatal(err)
	}
	before := factsOf(t, c)
	file := filepath.Join(t.TempDir(), "cluster.backup")
	if err := os.WriteFile(file, backupThrough(t, c), 0o600); err != nil {
		t.Fatal(err)
	}
	oldID := first.NodeID()
	first.stop()

	dir := shortDir(t)
	res, err := Restore(file, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if res.ClusterID != before.clusterID || res.NodeID == oldID || len(res.OldManagers) != 1 || res.OldManagers[0].ID != oldID {
		t.Fatalf("restore result %+v; want cluster %s, a new node ID, and old manager %s", res, before.clusterID, oldID)
	}
	again := startManager(t, dir, fake.New())
	if again.NodeID() != res.NodeID || again.NodeID() == oldID {
		t.Fatalf("restored manager runs as node %s; want the new %s", again.NodeID(), res.NodeID)
	}
	if !again.raft.IsLeader() || len(again.raft.Info().GetServers()) != 1 {
		t.Fatalf("restored manager: leader %v, Raft servers %v; want the only member, leading", again.raft.IsLeader(), again.raft.Info().GetServers())
	}
	if got := again.raft.Info().GetLastSnapshotIndex(); got < res.StateIndex {
		t.Errorf("restored Raft's last snapshot is at %d; want the restored state's index %d (taken as a snapshot)", got, res.StateIndex)
	}
	if _, err := os.Stat(seedPath(again.cfg.DataDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the restored state is still in the data dir once Raft holds it: %v", err)
	}
	c2 := again.localClient(t)
	checkSameCluster(t, before, factsOf(t, c2))

	if _, err := c2.CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
		Name: "after", Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox", Args: []string{"sleep", "1000"}}},
	}}); err != nil {
		t.Fatalf("a write on the restored cluster: %v", err)
	}
}

// A backup through a follower holds every write acknowledged before it
// was asked for: the follower catches up with the leader first.
func TestBackupThroughFollowerIsCurrent(t *testing.T) {
	ms := joinManagers(t, 2)
	leader := leaderOf(ms)
	if leader == nil {
		t.Fatal("no leader")
	}
	follower := ms[0]
	if follower == leader {
		follower = ms[1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 5 {
		name := fmt.Sprintf("s%d", i)
		if _, err := leader.localClient(t).CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
			Name: name, Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox"}},
		}}); err != nil {
			t.Fatal(err)
		}
		b, man, err := backupfile.Read(bytes.NewReader(backupThrough(t, follower.localClient(t))))
		if err != nil {
			t.Fatal(err)
		}
		if man.Services != i+1 || len(b.State.GetServices()) != i+1 {
			t.Fatalf("a backup through the follower after %d service creates holds %d services", i+1, man.Services)
		}
	}
}

func checkSameCluster(t *testing.T, before, after clusterFacts) {
	t.Helper()
	if after.clusterID != before.clusterID || after.caFingerprint != before.caFingerprint {
		t.Errorf("restored cluster %s with CA %s; want %s with CA %s", after.clusterID, after.caFingerprint, before.clusterID, before.caFingerprint)
	}
	if after.workerToken != before.workerToken || after.managerToken != before.managerToken {
		t.Errorf("the join tokens changed in the restore")
	}
	if len(after.services) != len(before.services) {
		t.Fatalf("restored %d services, want %d", len(after.services), len(before.services))
	}
	for name, want := range before.services {
		got := after.services[name]
		if !proto.Equal(got.GetSpec(), want.GetSpec()) || got.GetMeta().GetVersion() != want.GetMeta().GetVersion() || got.GetId() != want.GetId() {
			t.Errorf("restored service %s:\n%v\nwant\n%v", name, got, want)
		}
	}
}

// testBackupFile writes a valid backup of a made-up cluster.
func testBackupFile(t *testing.T) string {
	t.Helper()
	root, err := ca.Generate("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := root.KeyPEM()
	var buf bytes.Buffer
	_, err = backupfile.Write(&buf, &backupfile.Backup{
		State:  &api.StoreSnapshot{Format: 1, Index: 9, Clusters: []*api.Cluster{{Id: "c1", CaFingerprint: root.Fingerprint()}}},
		CACert: root.CertPEM(), CAKey: key, DataKey: bytes.Repeat([]byte{1}, 32),
	})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ok.backup")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// listing is a dir's files and contents, to tell whether it changed.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		out[path] = string(data)
		return err
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// Restore refuses a data dir in use and a bad backup, and leaves the dir
// as it found it.
func TestRestoreRefuses(t *testing.T) {
	good := testBackupFile(t)
	raw, _ := os.ReadFile(good)
	corrupt := filepath.Join(t.TempDir(), "corrupt.backup")
	bad := bytes.Clone(raw)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(corrupt, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	managerDir := t.TempDir()
	for name, data := range map[string]string{identityFile: `{"node_id":"n1","cluster_id":"c0"}`, "raft/raft.db": "old raft"} {
		os.MkdirAll(filepath.Dir(filepath.Join(managerDir, name)), 0o700)
		if err := os.WriteFile(filepath.Join(managerDir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	busyDir := t.TempDir()
	os.WriteFile(filepath.Join(busyDir, "notes.txt"), []byte("mine"), 0o600)
	tests := []struct {
		name, file, dir, want string
	}{
		{"a manager's data dir", good, managerDir, "is the data dir of a manager (it holds identity.json)"},
		{"a dir not empty", good, busyDir, "is not empty (it holds notes.txt)"},
		{"a corrupt backup, new dir", corrupt, filepath.Join(t.TempDir(), "new"), "the backup is damaged"},
		{"a corrupt backup, empty dir", corrupt, t.TempDir(), "the backup is damaged"},
		{"not a backup", filepath.Join(managerDir, identityFile), t.TempDir(), "not a Warren cluster backup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, statErr := os.Stat(tt.dir)
			before := listing(t, tt.dir)
			_, err := Restore(tt.file, tt.dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want one containing %q", err, tt.want)
			}
			if after := listing(t, tt.dir); len(after) != len(before) {
				t.Fatalf("a refused restore changed %s: %v, was %v", tt.dir, after, before)
			}
			for path, data := range before {
				if got, _ := os.ReadFile(path); string(got) != data {
					t.Fatalf("a refused restore changed %s", path)
				}
			}
			if _, err := os.Stat(tt.dir); (err == nil) != (statErr == nil) {
				t.Fatalf("a refused restore created or removed %s", tt.dir)
			}
		})
	}
	// The good backup restores into an empty dir, and not twice.
	dir := t.TempDir()
	if _, err := Restore(good, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(good, dir); err == nil || !strings.Contains(err.Error(), identityFile) {
		t.Fatalf("a second restore into the same dir: err = %v; want a refusal naming %s", err, identityFile)
	}
}
