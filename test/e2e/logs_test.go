package e2e

import (
	"bufio"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/testutil"
)

// follower runs `warren service logs -f …` and collects its stdout lines.
type follower struct {
	t     testing.TB
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan error
}

func (c *cluster) followLogs(args ...string) *follower {
	c.t.Helper()
	f := &follower{t: c.t, done: make(chan error, 1)}
	f.cmd = exec.Command(binary, append([]string{"-H", "unix://" + c.sock, "service", "logs", "-f"}, args...)...)
	out, err := f.cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	var stderr strings.Builder
	f.cmd.Stderr = &stderr
	if err := f.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f.mu.Lock()
			f.lines = append(f.lines, sc.Text())
			f.mu.Unlock()
		}
		err := f.cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w; stderr: %s", err, stderr.String())
		}
		f.done <- err
	}()
	c.t.Cleanup(func() {
		_ = f.cmd.Process.Kill()
	})
	return f
}

func (f *follower) snapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...)
}

// waitLine waits for a line matching re after the first `from` lines, and
// returns its index.
func (f *follower) waitLine(from int, re *regexp.Regexp, timeout time.Duration) int {
	f.t.Helper()
	found := -1
	testutil.WaitFor(f.t, timeout, fmt.Sprintf("service logs -f printing a line like %q", re), func() bool {
		lines := f.snapshot()
		for i := from; i < len(lines); i++ {
			if re.MatchString(lines[i]) {
				found = i
				return true
			}
		}
		return false
	})
	return found
}

// interrupt ends the follow as Ctrl-C does, and checks it ends cleanly.
func (f *follower) interrupt() {
	f.t.Helper()
	_ = f.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-f.done:
		if err != nil {
			f.t.Errorf("service logs -f after Ctrl-C: %v; want exit code 0", err)
		}
	case <-time.After(10 * time.Second):
		f.t.Error("service logs -f did not end within 10s of Ctrl-C")
	}
}

var countLine = regexp.MustCompile(`^counter\.1\.([0-9a-z]{12})@\S+ +\| count (\d+)$`)

// A service printing a counter every 100 ms: `service logs --tail`, and
// `-f` across a kill of its container (restarted in place) and across a
// replacement of its task (an update).
func TestServiceLogsTailAndFollow(t *testing.T) {
	c := newCluster(t)
	c.importBusybox(testImage)
	c.mustWarren("service", "create", "counter", "--image", testImage, "--", "sh", "-c",
		`i=0; while true; do i=$((i+1)); echo "count $i"; sleep 0.1; done`)

	var out string
	testutil.WaitFor(t, 30*time.Second, "service logs showing count 10", func() bool {
		out, _, _ = c.warren("service", "logs", "counter")
		return strings.Contains(out, "| count 10\n")
	})
	out = c.mustWarren("service", "logs", "--tail", "5", "counter")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("service logs --tail 5 printed %d lines:\n%s", len(lines), out)
	}
	for i, l := range lines {
		m := countLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q is not `counter.1.<task ID>@<node> | count N`", l)
		}
		if n, _ := strconv.Atoi(m[2]); i > 0 && n != mustAtoi(countLine.FindStringSubmatch(lines[i-1])[2])+1 {
			t.Fatalf("--tail 5 lines are not consecutive:\n%s", out)
		}
	}

	f := c.followLogs("--tail", "1", "counter")
	first := f.waitLine(0, countLine, 15*time.Second)
	taskID := countLine.FindStringSubmatch(f.snapshot()[first])[1]

	// Kill the container: the node restarts it in place, the counter
	// starts over, and its lines keep coming.
	victim := c.running("counter")[0]
	if err := syscall.Kill(int(victim.Pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	restart := f.waitLine(first+1, regexp.MustCompile(`^counter\.1\.`+taskID+`@\S+ +\| count 3$`), 30*time.Second)

	// An update replaces the task: the new one's lines keep coming too.
	c.mustWarren("service", "update", "counter", "--env-add", "V=2")
	var newTask string
	for _, task := range c.tasks("counter") {
		if task.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING {
			newTask = task.GetId()[:12]
		}
	}
	if newTask == "" || newTask == taskID {
		t.Fatalf("no new task after the update (old %s)", taskID)
	}
	f.waitLine(restart+1, regexp.MustCompile(`^counter\.1\.`+newTask+`@\S+ +\| count 5$`), 30*time.Second)
	f.interrupt()
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// How fast `service logs -f` delivers the lines of a service printing as
// fast as it can, and that none is lost. A figure, not an assertion.
func TestServiceLogsFollowThroughput(t *testing.T) {
	const n = 200000
	c := newCluster(t)
	c.importBusybox(testImage)
	// The lines start a little after the service does, so that the follow
	// is there before them.
	c.mustWarren("service", "create", "chatty", "--image", testImage, "--", "sh", "-c",
		fmt.Sprintf(`sleep 3; seq 1 %d; sleep 100000`, n))
	f := c.followLogs("chatty")
	lineRe := regexp.MustCompile(`\| (\d+)$`)
	var start time.Time
	testutil.WaitFor(t, 60*time.Second, "the first line", func() bool {
		if len(f.snapshot()) > 0 {
			start = time.Now()
			return true
		}
		return false
	})
	testutil.WaitFor(t, 120*time.Second, fmt.Sprintf("all %d lines", n), func() bool {
		return len(f.snapshot()) >= n
	})
	elapsed := time.Since(start)
	lines := f.snapshot()
	for i, l := range lines[:n] {
		m := lineRe.FindStringSubmatch(l)
		if m == nil || mustAtoi(m[1]) != i+1 {
			t.Fatalf("line %d is %q; want number %d: lines lost or out of order", i, l, i+1)
		}
	}
	t.Logf("service logs -f: %d lines in %s: %.0f lines/s, none lost", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())

	begin := time.Now()
	out := c.mustWarren("service", "logs", "chatty")
	if got := strings.Count(out, "\n"); got != n {
		t.Errorf("service logs printed %d lines; want %d", got, n)
	}
	t.Logf("service logs (no follow): %d lines in %s", n, time.Since(begin).Round(time.Millisecond))
	f.interrupt()
}
