package scheduler

import (
	"fmt"
	"testing"

	"github.com/warren-project/warren/api"
)

// benchCluster builds nodes of 16 CPUs and 64 GiB in three zones, with
// running tasks spread over them.
func benchCluster(nNodes, nRunning int) ([]*api.Node, []*api.Task) {
	nodes := make([]*api.Node, nNodes)
	for i := range nodes {
		nodes[i] = mkNode(fmt.Sprintf("node-%03d", i), capacity(16*cpu, 64*gib),
			labels("zone", fmt.Sprintf("z%d", i%3)))
	}
	tasks := make([]*api.Task, nRunning)
	for i := range tasks {
		tasks[i] = mkTask(fmt.Sprintf("run-%05d", i), fmt.Sprintf("old-%d", i%50),
			running(nodes[i%nNodes].Id), reserve(cpu/100, 16*mib))
	}
	return nodes, tasks
}

// benchPending returns n tasks of 10 services, each reserving a little, half
// of them constrained to a zone.
func benchPending(n int) []*api.Task {
	var out []*api.Task
	for s := 0; s < 10; s++ {
		svc := fmt.Sprintf("svc-%d", s)
		opts := []taskOpt{reserve(cpu/1000, 4*mib)}
		if s%2 == 0 {
			opts = append(opts, constraints("node.labels.zone!=z1", "node.platform.os==linux"))
		}
		out = append(out, mkTasks(n/10, svc, opts...)...)
	}
	return out
}

func benchSchedule(b *testing.B, nNodes, nRunning, nPending int) {
	nodes, tasks := benchCluster(nNodes, nRunning)
	pending := benchPending(nPending)
	all := append(append([]*api.Task{}, tasks...), pending...)
	b.ReportAllocs()
	b.ResetTimer()
	var placed int
	for i := 0; i < b.N; i++ {
		placed = 0
		for _, d := range Schedule(nodes, all, pending) {
			if d.NodeID != "" {
				placed++
			}
		}
	}
	b.StopTimer()
	if placed != nPending {
		b.Fatalf("placed %d of %d tasks", placed, nPending)
	}
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(perOp*1e3, "ms/schedule")
	b.ReportMetric(float64(nPending)/perOp, "tasks/s")
}

func BenchmarkSchedule1000On100(b *testing.B)  { benchSchedule(b, 100, 0, 1000) }
func BenchmarkSchedule10000On100(b *testing.B) { benchSchedule(b, 100, 0, 10000) }

// With 10,000 tasks already running, building the nodes' load counts too.
func BenchmarkSchedule1000On100Loaded(b *testing.B) { benchSchedule(b, 100, 10000, 1000) }
