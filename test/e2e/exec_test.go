package e2e

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/testutil"
)

// TestExec runs commands in a service's container through the real
// binary: output, exit code, stdin, and a clear refusal.
func TestExec(t *testing.T) {
	c := newCluster(t)
	c.importBusybox(testImage)
	c.mustWarren("service", "create", "shell", "--image", testImage, "--", "sleep", "100000")
	var taskID string
	testutil.WaitFor(t, 30*time.Second, "a running task of service shell", func() bool {
		for _, tk := range c.tasks("shell") {
			if tk.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING {
				taskID = tk.GetId()
				return true
			}
		}
		return false
	})

	t.Run("output and exit code", func(t *testing.T) {
		out, errOut, err := c.warren("exec", "shell", "--", "sh", "-c", "echo hello; echo oops >&2; exit 7")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 7 || out != "hello\n" || errOut != "oops\n" {
			t.Fatalf("exec = %v, stdout %q, stderr %q; want exit 7, hello, oops", err, out, errOut)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		cmd := exec.Command(binary, "-H", "unix://"+c.sock, "exec", "-i", taskID[:12], "--", "cat")
		cmd.Stdin = strings.NewReader("data\n")
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil || o.String() != "data\n" {
			t.Fatalf("echo data | exec -i cat = %v, stdout %q, stderr %q", err, o.String(), e.String())
		}
	})
	t.Run("a command that is not there", func(t *testing.T) {
		_, errOut, err := c.warren("exec", "shell", "--", "/no/such/binary")
		if err == nil || !strings.Contains(errOut, "no/such/binary") {
			t.Fatalf("exec of a missing binary = %v, stderr %q; want an error naming it", err, errOut)
		}
	})
	t.Run("no such task", func(t *testing.T) {
		_, errOut, err := c.warren("exec", "nothing", "--", "true")
		if err == nil || !strings.Contains(errOut, `no task or service "nothing"`) {
			t.Fatalf("exec in nothing = %v, stderr %q", err, errOut)
		}
	})
}
