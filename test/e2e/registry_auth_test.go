package e2e

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/ociimage"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/testutil"
)

// warrenStdin runs the CLI against this cluster with stdin.
func (c *cluster) warrenStdin(stdin string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(binary, append([]string{"-H", "unix://" + c.sock}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// filesHolding lists the regular files under dir whose bytes contain secret.
func filesHolding(t *testing.T, dir, secret string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "netns" {
			return filepath.SkipDir // tasks' network namespaces, not files
		}
		if !d.Type().IsRegular() {
			return nil // sockets, fifos
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(secret)) {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// A service's image in a registry that wants a password: without
// credentials the create fails at once and changes nothing; with them the
// node pulls and runs it, and the password is nowhere in the manager's
// files, its log or the API's answers.
func TestPrivateRegistryCredentials(t *testing.T) {
	const user, password = "warren", "pw-7e41c0-never-in-raft"
	c := newCluster(t)
	reg := testutil.StartRegistry(t, testutil.WithHtpasswd(user, password))
	ref := reg + "/private/busybox:e2e"
	ctx := context.Background()
	if _, err := c.exec.ImportImage(ctx, bytes.NewReader(testutil.BusyboxImage(t, ref, ociimage.Config{}))); err != nil {
		t.Fatal(err)
	}
	if err := c.exec.PushImage(ctx, ref, nil); err == nil {
		t.Fatal("the registry took a push without credentials: it does not check them")
	}
	if err := c.exec.PushImage(ctx, ref, &runtime.RegistryAuth{Username: user, Password: password}); err != nil {
		t.Fatalf("push to %s: %v", reg, err)
	}
	if err := c.exec.DeleteImage(ctx, ref); err != nil {
		t.Fatal(err)
	}

	_, errOut, err := c.warren("service", "create", "private", "--image", ref, "--", "sleep", "100000")
	if err == nil {
		t.Fatal("service create without credentials succeeded")
	}
	if !strings.Contains(errOut, "401 Unauthorized") || !strings.Contains(errOut, "--registry-username") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Fatalf("error %q: want one line saying the registry refused, and how to give credentials", errOut)
	}
	t.Logf("refused: %s", strings.TrimSpace(errOut))
	if list, err := c.client.ListServices(ctx, &api.ListServicesRequest{}); err != nil || len(list.GetServices()) != 0 {
		t.Fatalf("services after the refused create: %v, %v; want none", list.GetServices(), err)
	}

	_, errOut, err = c.warrenStdin("wrong\n", "service", "create", "private", "--image", ref,
		"--registry-username", user, "--registry-password-stdin", "--", "sleep", "100000")
	if err == nil || !strings.Contains(errOut, "credentials of user "+user) || strings.Contains(errOut, "wrong") {
		t.Fatalf("create with a wrong password: %v, stderr %q; want a refusal naming the user, not the password", err, errOut)
	}
	t.Logf("refused: %s", strings.TrimSpace(errOut))

	if out, errOut, err := c.warrenStdin(password+"\n", "service", "create", "private", "--image", ref,
		"--registry-username", user, "--registry-password-stdin", "--", "sleep", "100000"); err != nil {
		t.Fatalf("service create with credentials: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	if n := len(c.running("private")); n != 1 {
		t.Fatalf("%d containers running, want 1", n)
	}
	inspect := c.mustWarren("service", "inspect", "private", "--format", "json")
	if strings.Contains(inspect, password) || strings.Contains(strings.ToLower(inspect), "sealed") {
		t.Fatalf("service inspect shows the credentials:\n%s", inspect)
	}

	// A restarted manager opens them with the key in its data dir: a new
	// task pulls the image again, now gone from the node.
	c.stop()
	c.start()
	if err := c.exec.DeleteImage(ctx, ref); err != nil {
		t.Fatal(err)
	}
	c.mustWarren("service", "scale", "private=2")
	testutil.WaitFor(t, 30*time.Second, "two containers of private running", func() bool { return len(c.running("private")) == 2 })

	dataDir := filepath.Join(c.dir, "data")
	if found := filesHolding(t, filepath.Join(dataDir, "raft"), password); len(found) > 0 {
		t.Fatalf("Raft files hold the password in plain text: %v", found)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "raft", "raft.db")); err != nil {
		t.Fatalf("no Raft log where the test looks: %v", err)
	}
	if found := filesHolding(t, dataDir, password); len(found) > 0 {
		t.Fatalf("files in the data dir hold the password in plain text: %v", found)
	}
	if managerLog, err := os.ReadFile(c.logPath); err != nil || bytes.Contains(managerLog, []byte(password)) {
		t.Fatalf("the manager's log shows the password (or cannot be read: %v)", err)
	}
}
