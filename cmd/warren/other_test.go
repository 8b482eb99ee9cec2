package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client"
)

func TestNodeLs(t *testing.T) {
	fake, host := fakeManager(t)
	fake.AddNode("node-2", api.NodeRole_NODE_ROLE_WORKER)
	warren(t, host, "service", "create", "web", "--image", "nginx", "--replicas", "3").wantOK(t)
	r := warren(t, host, "node", "ls").wantOK(t)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "AVAILABILITY") {
		t.Fatalf("node ls:\n%s", r.out)
	}
	for i, want := range [][]string{{"node-1", "manager", "ready", "active", "10.0.0.1"}, {"node-2", "worker", "ready"}} {
		for _, cell := range want {
			if !strings.Contains(lines[i+1], cell) {
				t.Errorf("row %q lacks %q", lines[i+1], cell)
			}
		}
	}
	r = warren(t, host, "node", "list", "--format", "{{.Hostname}}={{.Tasks}}").wantOK(t)
	if r.out != "node-1=1\nnode-2=2\n" && r.out != "node-1=2\nnode-2=1\n" {
		t.Errorf("running task counts %q; want 3 tasks spread over both nodes", r.out)
	}
	r = warren(t, host, "node", "inspect", "node-2", "--format", "{{.Description.Hostname}} {{.Spec.Role}}").wantOK(t)
	if r.out != "node-2 NODE_ROLE_WORKER\n" {
		t.Errorf("node inspect template output %q", r.out)
	}
}

func TestClusterInfo(t *testing.T) {
	_, host := fakeManager(t)
	r := warren(t, host, "cluster", "info").wantOK(t)
	for _, want := range []string{"Cluster ID:", "fakecluster", "Raft state:", "Leader", "CA fingerprint:", "sha256:0123456789abcdef", "Nodes:"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("cluster info lacks %q:\n%s", want, r.out)
		}
	}
	r = warren(t, host, "cluster", "info", "--format", "json").wantOK(t)
	var info map[string]any
	if err := json.Unmarshal([]byte(r.out), &info); err != nil || info["raft"] == nil {
		t.Fatalf("cluster info json %v:\n%s", err, r.out)
	}
}

// cluster info lists the managers as the answering one sees them, with
// how long ago each last answered.
func TestClusterInfoManagers(t *testing.T) {
	fake, host := fakeManager(t)
	fake.AddNode("node-2", api.NodeRole_NODE_ROLE_WORKER)
	m3 := fake.AddNode("node-3", api.NodeRole_NODE_ROLE_MANAGER)
	now := time.Now()
	if err := fake.SetManagerUnreachable("node-3", now.Add(-2*time.Second)); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, []string{"warren", "-H", host, "cluster", "info"}, strings.NewReader(""), &out, &errOut, func(c *cli) {
		c.now = func() time.Time { return now }
	})
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, errOut.String())
	}
	leader := fake.Nodes()[0]
	_, table, ok := strings.Cut(out.String(), "\nManagers:\n")
	if !ok {
		t.Fatalf("cluster info has no Managers table:\n%s", out.String())
	}
	rows := strings.Split(strings.TrimSpace(table), "\n")
	want := [][]string{
		{"ID", "API ADDRESS", "RAFT ADDRESS", "STATUS", "LAST CONTACT"},
		{shortID(leader.GetId()), "10.0.0.1:2377", "10.0.0.1:2379", "Leader", "Less than a second ago"},
		{shortID(m3.GetId()), "10.0.0.3:2377", "10.0.0.3:2379", "Unreachable", "2 seconds ago"},
	}
	if len(rows) != len(want) {
		t.Fatalf("managers table has %d rows, want %d (no workers):\n%s", len(rows), len(want), table)
	}
	for i, cells := range want {
		if got := strings.Join(strings.Fields(rows[i]), " "); got != strings.Join(cells, " ") {
			t.Errorf("row %d: %q, want %q", i, got, strings.Join(cells, " "))
		}
	}
	for _, want := range []string{"Raft term:", "Raft indexes:", "commit ", "applied ", "Raft leader:", leader.GetId()} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("cluster info lacks %q:\n%s", want, out.String())
		}
	}
}

func TestClusterHasInit(t *testing.T) {
	_, host := fakeManager(t)
	r := warren(t, host, "cluster", "--help").wantOK(t)
	if !strings.Contains(r.out, "init") || !strings.Contains(r.out, "info") {
		t.Fatalf("cluster help lacks init and info:\n%s", r.out)
	}
}

func TestImageImportAndLs(t *testing.T) {
	fake, host := fakeManager(t)
	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(archive, bytes.Repeat([]byte("x"), client.ImportChunkSize+10), 0o600); err != nil {
		t.Fatal(err)
	}
	r := warren(t, host, "image", "import", archive, "--node", "node-1").wantOK(t)
	if !strings.HasPrefix(r.out, "Imported image: docker.io/library/imported:latest (sha256:") || !strings.HasSuffix(r.out, "on node-1\n") {
		t.Fatalf("import output %q", r.out)
	}
	if got := fake.Requests("ListNodes"); len(got) == 0 {
		t.Errorf("import did not look up node-1's ID")
	}
	r = warren(t, host, "image", "ls").wantOK(t)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "1MiB") || !strings.Contains(lines[1], "node-1") {
		t.Fatalf("image ls:\n%s", r.out)
	}
	r = warren(t, host, "image", "ls", "--format", "json").wantOK(t)
	var images []map[string]any
	if err := json.Unmarshal([]byte(r.out), &images); err != nil || len(images) != 1 {
		t.Fatalf("image ls json %v:\n%s", err, r.out)
	}
}

func TestImageImportMissingFile(t *testing.T) {
	fake, host := fakeManager(t)
	warren(t, host, "image", "import", "/nonexistent.tar").wantError(t, "open the image archive: open /nonexistent.tar: no such file or directory")
	if n := len(fake.Calls()); n != 0 {
		t.Fatalf("%d calls for a missing file; want none", n)
	}
}

func TestImageImportFromStdin(t *testing.T) {
	_, host := fakeManager(t)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"warren", "-H", host, "image", "import", "-", "--format", "{{.Size}}"},
		strings.NewReader("tarball"), &out, &errOut)
	if code != 0 || out.String() != "7B\n" {
		t.Fatalf("exit code %d, stdout %q, stderr %q; want the 7 bytes of stdin imported", code, out.String(), errOut.String())
	}
}
