package integration

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkIdleNodes joins 100 nodes, each with its own session over
// mutual TLS, then counts the Raft writes an idle cluster makes:
// heartbeats are kept in memory, so there should be none.
//
//	go test ./test/integration -run '^$' -bench IdleNodes -benchtime 1x
func BenchmarkIdleNodes(b *testing.B) {
	const nodes = 100
	const idle = 10 * time.Second
	for i := 0; i < b.N; i++ {
		c := newCluster(b)
		start := time.Now()
		for n := 0; n < nodes; n++ {
			c.join(fmt.Sprintf("n%03d", n), nil)
		}
		b.ReportMetric(time.Since(start).Seconds()/nodes*1000, "ms/join-to-ready")
		before := c.mgr.Store().Index()
		time.Sleep(idle) // the measurement window itself
		writes := c.mgr.Store().Index() - before
		b.ReportMetric(float64(writes)/idle.Seconds(), "raft-writes/s")
	}
}
