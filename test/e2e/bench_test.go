package e2e

import (
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/testutil"
)

// BenchmarkServiceCreate times `service create --replicas N` (which waits)
// from the command to all replicas running, with the local image.
//
//	go test ./test/e2e -run '^$' -bench ServiceCreate -benchtime 3x
func BenchmarkServiceCreate(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			c := newCluster(b)
			c.importBusybox(testImage)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				name := "bench" + strconv.Itoa(i)
				start := time.Now()
				c.mustWarren("service", "create", name, "--image", testImage, "--replicas", strconv.Itoa(n), "--", "sleep", "100000")
				b.ReportMetric(time.Since(start).Seconds(), "s/create")
				b.StopTimer()
				if got := len(c.running(name)); got != n {
					b.Fatalf("%d running, want %d", got, n)
				}
				c.mustWarren("service", "rm", name)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkKillToReplacement times a SIGKILLed container's replacement:
// from the kill to the task reported running again with a new process.
func BenchmarkKillToReplacement(b *testing.B) {
	c := newCluster(b)
	c.importBusybox(testImage)
	c.mustWarren("service", "create", "victim", "--image", testImage, "--", "sleep", "100000")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctr := c.running("victim")[0]
		start := time.Now()
		if err := syscall.Kill(int(ctr.Pid), syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		testutil.WaitFor(b, 60*time.Second, "replacement running", func() bool {
			for _, task := range c.tasks("victim") {
				st := task.GetStatus()
				if st.GetState() == api.TaskState_TASK_STATE_RUNNING && st.GetPid() != ctr.Pid && alive(st.GetPid()) {
					return true
				}
			}
			return false
		})
		b.ReportMetric(time.Since(start).Seconds(), "s/replace")
		// Let the back-off reset between rounds, as between real failures.
		b.StopTimer()
		time.Sleep(11 * time.Second)
		b.StartTimer()
	}
}
