package worker

import (
	"maps"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
)

// Labels Warren puts on every container it runs. The container ID is the
// task ID, so a restarted agent finds what it already runs.
const (
	LabelTaskID      = "warren.task.id"
	LabelServiceID   = "warren.service.id"
	LabelServiceName = "warren.service.name"
	LabelNodeID      = "warren.node.id"
	LabelSlot        = "warren.slot"
)

// containerSpec is the container of task t on node nodeID. image is the
// normalized reference; logPath may be empty (output discarded).
func containerSpec(t *api.Task, nodeID, image, logPath string) runtime.Spec {
	c := t.GetSpec().GetContainer()
	labels := maps.Clone(c.GetLabels())
	if labels == nil {
		labels = map[string]string{}
	}
	// Ours last: a user label cannot hide a container from its agent.
	maps.Copy(labels, map[string]string{
		LabelTaskID:      t.GetId(),
		LabelServiceID:   t.GetServiceId(),
		LabelServiceName: t.GetServiceName(),
		LabelNodeID:      nodeID,
		LabelSlot:        strconv.FormatUint(t.GetSlot(), 10),
	})
	limits := t.GetSpec().GetResources().GetLimits()
	return runtime.Spec{
		ID:          t.GetId(),
		Image:       image,
		Command:     slices.Clone(c.GetCommand()),
		Args:        slices.Clone(c.GetArgs()),
		Env:         slices.Clone(c.GetEnv()),
		WorkDir:     c.GetWorkdir(),
		User:        c.GetUser(),
		Labels:      labels,
		NanoCPUs:    limits.GetNanoCpus(),
		MemoryBytes: limits.GetMemoryBytes(),
		LogPath:     logPath,
		LogMaxSize:  c.GetLogMaxSize(),
		LogMaxFiles: int(c.GetLogMaxFiles()),
	}
}

// logPath is where task id's output goes, or "" without a log directory.
func logPath(logDir, id string) string {
	if logDir == "" {
		return ""
	}
	return filepath.Join(logDir, id+".log")
}
