// Package hostinfo describes the machine a node runs on, for the scheduler.
package hostinfo

import (
	"os"
	goruntime "runtime"
	"syscall"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/version"
)

// Describe reports what this machine offers: hostname, platform, CPUs, memory.
func Describe() *api.NodeDescription {
	host, _ := os.Hostname()
	var mem int64
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		mem = int64(si.Totalram) * int64(si.Unit)
	}
	return &api.NodeDescription{
		Hostname:      host,
		Platform:      &api.Platform{Architecture: goruntime.GOARCH, Os: goruntime.GOOS},
		Resources:     &api.Resources{NanoCpus: int64(goruntime.NumCPU()) * 1e9, MemoryBytes: mem},
		WarrenVersion: version.Version,
	}
}
