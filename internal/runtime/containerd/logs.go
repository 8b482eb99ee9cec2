package containerd

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/warren-project/warren/internal/logfile"
	"github.com/warren-project/warren/internal/runtime"
)

// Labels keeping a container's log rotation, so that a start in place (by
// this process or a later one) rotates it the same way.
const (
	labelLogMaxSize  = labelPrefix + "log-max-size"
	labelLogMaxFiles = labelPrefix + "log-max-files"
)

// logLabels are the executor's labels describing spec's log.
func logLabels(spec runtime.Spec) map[string]string {
	if spec.LogPath == "" {
		return nil
	}
	l := map[string]string{labelLogPath: spec.LogPath}
	if spec.LogMaxSize > 0 {
		l[labelLogMaxSize] = strconv.FormatInt(spec.LogMaxSize, 10)
	}
	if spec.LogMaxFiles > 0 {
		l[labelLogMaxFiles] = strconv.Itoa(spec.LogMaxFiles)
	}
	return l
}

// logIO is how a new task of a container with these labels gets its
// output written: the shim runs the log driver (`warren log-driver`) with
// the container's stdout and stderr, which writes them as timestamped
// records and rotates the file. The driver is the shim's child, not ours:
// logging goes on while Warren restarts or is upgraded.
func (e *Executor) logIO(id string, labels map[string]string) (cio.Creator, error) {
	path := labels[labelLogPath]
	if path == "" {
		return cio.NullIO, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("container %s: log directory: %w", id, err)
	}
	cfg := logfile.DriverConfig{Path: path}
	cfg.MaxSize, _ = strconv.ParseInt(labels[labelLogMaxSize], 10, 64)
	cfg.MaxFiles, _ = strconv.Atoi(labels[labelLogMaxFiles])
	return cio.BinaryIO(e.cfg.LogDriver, map[string]string{logfile.DriverCommand: cfg.Arg()}), nil
}

// defaultLogDriver is this program: the warren binary answers to
// `log-driver`. A test binary does not, unless its TestMain makes it (as
// this package's does); tests elsewhere that start containers must set
// Config.LogDriver.
func defaultLogDriver() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program, to run it as the containers' log driver: %w", err)
	}
	return exe, nil
}
