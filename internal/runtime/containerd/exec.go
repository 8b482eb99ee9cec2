package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warren-project/warren/internal/runtime"
)

// execCleanup bounds the deletion of an exec process, which kills it first
// and waits for it: done on a context of its own, since the caller's may
// have ended (that is often why the process is being deleted).
const execCleanup = 10 * time.Second

// ioDrain bounds the wait for an exited command's output to be copied. A
// command that left a background child holding its stdout open would
// otherwise hold the caller until that child ends.
const ioDrain = time.Second

// Exec runs cmd beside the container's main process, with that process's
// user, environment and working directory. Each output stream goes to its
// own writer: one buffer for both sometimes loses output.
func (e *Executor) Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (int, []byte, error) {
	if len(cmd) == 0 || cmd[0] == "" {
		return -1, nil, fmt.Errorf("exec in container %s: no command: %w", id, runtime.ErrInvalidArgument)
	}
	ctx = e.WithNamespace(ctx)
	t, proc, err := e.execSetup(ctx, id, cmd)
	if err != nil {
		return -1, nil, err
	}
	var stdout, stderr cappedWriter
	p, err := t.Exec(ctx, execID(), proc, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr)))
	if err != nil {
		return -1, nil, fmt.Errorf("exec in container %s: %w", id, err)
	}
	defer e.deleteProcess(ctx, id, p)
	exited, err := p.Wait(ctx)
	if err != nil {
		return -1, nil, fmt.Errorf("exec in container %s: wait: %w", id, err)
	}
	if err := p.Start(ctx); err != nil {
		return -1, nil, fmt.Errorf("exec %q in container %s: %w", cmd[0], id, err)
	}
	var expired <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case s := <-exited:
		code, _, err := s.Result()
		if err != nil {
			return -1, nil, fmt.Errorf("exec in container %s: wait: %w", id, err)
		}
		drain(p)
		return int(code), joinOutput(&stdout, &stderr), nil
	case <-expired:
		// The deferred delete kills it.
		return -1, joinOutput(&stdout, &stderr), fmt.Errorf("exec in container %s: timed out after %s: %w", id, timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		return -1, nil, fmt.Errorf("exec in container %s: %w", id, ctx.Err())
	}
}

// execSetup finds the container's running task and makes the process spec
// of cmd from its main process's.
func (e *Executor) execSetup(ctx context.Context, id string, cmd []string) (client.Task, *specs.Process, error) {
	c, err := e.load(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	t, err := task(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	if t == nil {
		return nil, nil, fmt.Errorf("container %s has no task: %w", id, runtime.ErrNotFound)
	}
	st, err := t.Status(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("container %s: task status: %w", id, err)
	}
	if st.Status != client.Running {
		return nil, nil, fmt.Errorf("container %s is %s, not running: %w", id, st.Status, runtime.ErrNotFound)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("container %s: spec: %w", id, err)
	}
	if spec.Process == nil {
		return nil, nil, fmt.Errorf("container %s: its spec has no process", id)
	}
	proc := *spec.Process
	proc.Args, proc.Terminal, proc.ConsoleSize = slices.Clone(cmd), false, nil
	return t, &proc, nil
}

// deleteProcess kills (if need be) and deletes an exec process.
func (e *Executor) deleteProcess(ctx context.Context, id string, p client.Process) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), execCleanup)
	defer cancel()
	if _, err := p.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		e.log.Warn("cannot delete exec process", "container.id", id, "exec.id", p.ID(), "error", err)
	}
}

// drain waits, briefly, until the output of an exited process is copied.
func drain(p client.Process) {
	done := make(chan struct{})
	go func() {
		p.IO().Wait()
		close(done)
	}()
	timer := time.NewTimer(ioDrain)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

func execID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return "exec-" + hex.EncodeToString(b)
}

// cappedWriter keeps the first runtime.ExecOutputLimit bytes written to it
// and drops the rest, so a chatty command cannot grow the agent. Safe for
// concurrent use: a timed-out command may still be writing.
type cappedWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := runtime.ExecOutputLimit - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (w *cappedWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.buf)
}

func joinOutput(stdout, stderr *cappedWriter) []byte {
	return append(stdout.bytes(), stderr.bytes()...)
}

// ImageConfig reads the stored image's config blob for what the OCI types
// leave out: Docker's Healthcheck.
func (e *Executor) ImageConfig(ctx context.Context, ref string) (runtime.ImageConfig, error) {
	name, err := runtime.NormalizeRef(ref)
	if err != nil {
		return runtime.ImageConfig{}, err
	}
	ctx = e.WithNamespace(ctx)
	img, err := e.client.GetImage(ctx, name)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return runtime.ImageConfig{}, fmt.Errorf("image %s is not on this node: %w", name, runtime.ErrNotFound)
		}
		return runtime.ImageConfig{}, fmt.Errorf("image %s: %w", name, err)
	}
	desc, err := img.Config(ctx)
	if err != nil {
		return runtime.ImageConfig{}, fmt.Errorf("image %s: config: %w", name, err)
	}
	data, err := content.ReadBlob(ctx, img.ContentStore(), desc)
	if err != nil {
		return runtime.ImageConfig{}, fmt.Errorf("image %s: read config: %w", name, err)
	}
	var doc struct {
		Config struct {
			Healthcheck *runtime.Healthcheck
		} `json:"config"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return runtime.ImageConfig{}, fmt.Errorf("image %s: parse config: %w", name, err)
	}
	return runtime.ImageConfig{Healthcheck: doc.Config.Healthcheck}, nil
}
