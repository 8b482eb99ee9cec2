package containerd

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"

	"github.com/warren-project/warren/internal/runtime"
)

// Labels the executor keeps on containerd containers, besides the Spec's.
// They are not shown in runtime.Container.Labels.
const (
	labelPrefix    = "warren.runtime."
	labelLogPath   = labelPrefix + "log-path"
	labelStartedAt = labelPrefix + "started-at"
)

// killWait bounds the wait for a process to die after SIGKILL.
const killWait = 30 * time.Second

func snapshotKey(id string) string { return id + "-snapshot" }

// Create makes the container's metadata and writable snapshot.
func (e *Executor) Create(ctx context.Context, spec runtime.Spec) error {
	if spec.ID == "" {
		return fmt.Errorf("container ID is empty: %w", runtime.ErrInvalidArgument)
	}
	if spec.LogPath != "" && !filepath.IsAbs(spec.LogPath) {
		return fmt.Errorf("container %s: log path %q is not absolute: %w", spec.ID, spec.LogPath, runtime.ErrInvalidArgument)
	}
	ref, err := runtime.NormalizeRef(spec.Image)
	if err != nil {
		return err
	}
	ctx = e.WithNamespace(ctx)
	if _, err := e.client.LoadContainer(ctx, spec.ID); err == nil {
		return fmt.Errorf("container %s: %w", spec.ID, runtime.ErrAlreadyExists)
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: %w", spec.ID, err)
	}
	img, err := e.getImage(ctx, ref)
	if err != nil {
		return err
	}
	ociImg, err := img.Spec(ctx)
	if err != nil {
		return fmt.Errorf("image %s: config: %w", ref, err)
	}
	sopts, err := specOpts(img, ociImg.Config, spec)
	if err != nil {
		return err
	}
	// A snapshot left by a Create or Remove that died halfway would make
	// the new one collide; no container uses it (the ID is free).
	sn := e.client.SnapshotService(e.cfg.Snapshotter)
	if err := sn.Remove(ctx, snapshotKey(spec.ID)); err != nil && !errdefs.IsNotFound(err) {
		e.log.Warn("cannot remove stale snapshot", "container.id", spec.ID, "error", err)
	}

	labels := map[string]string{}
	for k, v := range spec.Labels {
		if !strings.HasPrefix(k, labelPrefix) {
			labels[k] = v
		}
	}
	maps.Copy(labels, logLabels(spec))
	_, err = e.client.NewContainer(ctx, spec.ID,
		client.WithImage(img),
		client.WithSnapshotter(e.cfg.Snapshotter),
		client.WithNewSnapshot(snapshotKey(spec.ID), img),
		client.WithRuntime(e.cfg.Runtime, nil),
		client.WithContainerLabels(labels),
		client.WithNewSpec(sopts...),
	)
	if err != nil {
		return fmt.Errorf("create container %s: %w", spec.ID, err)
	}
	return nil
}

func (e *Executor) load(ctx context.Context, id string) (client.Container, error) {
	c, err := e.client.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
		}
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	return c, nil
}

// task returns the container's task, or nil if it has none.
func task(ctx context.Context, c client.Container) (client.Task, error) {
	t, err := c.Task(ctx, nil)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("container %s: task: %w", c.ID(), err)
	}
	return t, nil
}

// Start starts a new task; an exited (or never started) earlier task is
// deleted first.
func (e *Executor) Start(ctx context.Context, id string) error {
	ctx = e.WithNamespace(ctx)
	c, err := e.load(ctx, id)
	if err != nil {
		return err
	}
	info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	old, err := task(ctx, c)
	if err != nil {
		return err
	}
	if old != nil {
		st, err := old.Status(ctx)
		if err != nil {
			return fmt.Errorf("container %s: task status: %w", id, err)
		}
		switch st.Status {
		case client.Stopped, client.Created:
			if _, err := old.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("container %s: delete old task: %w", id, err)
			}
		case client.Running, client.Paused, client.Pausing:
			return fmt.Errorf("container %s is already %s: %w", id, st.Status, runtime.ErrAlreadyExists)
		default:
			return fmt.Errorf("container %s: task in state %q, cannot start it", id, st.Status)
		}
	}

	ioc, err := e.logIO(id, info.Labels)
	if err != nil {
		return err
	}
	t, err := c.NewTask(ctx, ioc)
	if err != nil {
		return fmt.Errorf("container %s: create task: %w", id, err)
	}
	if err := t.Start(ctx); err != nil {
		if _, derr := t.Delete(ctx, client.WithProcessKill); derr != nil {
			e.log.Warn("cannot delete task that failed to start", "container.id", id, "error", derr)
		}
		return fmt.Errorf("container %s: start task: %w", id, err)
	}
	if _, err := c.SetLabels(ctx, map[string]string{labelStartedAt: time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
		e.log.Warn("cannot record start time", "container.id", id, "error", err)
	}
	return nil
}

// Wait waits for the container's current or last task to exit.
func (e *Executor) Wait(ctx context.Context, id string) (<-chan runtime.Exit, error) {
	nctx := e.WithNamespace(ctx)
	c, err := e.load(nctx, id)
	if err != nil {
		return nil, err
	}
	t, err := task(nctx, c)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("container %s has no task: %w", id, runtime.ErrNotFound)
	}
	statusC, err := t.Wait(nctx)
	if err != nil {
		return nil, fmt.Errorf("container %s: wait: %w", id, err)
	}
	ch := make(chan runtime.Exit, 1)
	go func() {
		defer close(ch)
		s := <-statusC
		code, at, err := s.Result()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			} else {
				err = errgrpc.ToNative(err)
			}
			ch <- runtime.Exit{Code: -1, At: time.Now(), Err: fmt.Errorf("container %s: wait: %w", id, err)}
			return
		}
		ch <- runtime.Exit{Code: int(code), At: at}
	}()
	return ch, nil
}

// Stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (e *Executor) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = e.WithNamespace(ctx)
	c, err := e.load(ctx, id)
	if err != nil {
		return err
	}
	t, err := task(ctx, c)
	if err != nil || t == nil {
		return err
	}
	st, err := t.Status(ctx)
	if err != nil {
		return fmt.Errorf("container %s: task status: %w", id, err)
	}
	if st.Status == client.Stopped {
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited, err := t.Wait(wctx)
	if err != nil {
		return fmt.Errorf("container %s: wait: %w", id, err)
	}
	if grace > 0 && st.Status != client.Created {
		if err := t.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("container %s: SIGTERM: %w", id, err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case s := <-exited:
			return waitErr(id, s)
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := t.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: SIGKILL: %w", id, err)
	}
	timer := time.NewTimer(killWait)
	defer timer.Stop()
	select {
	case s := <-exited:
		return waitErr(id, s)
	case <-timer.C:
		return fmt.Errorf("container %s: still running %s after SIGKILL", id, killWait)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func waitErr(id string, s client.ExitStatus) error {
	if err := s.Error(); err != nil {
		return fmt.Errorf("container %s: wait: %w", id, errgrpc.ToNative(err))
	}
	return nil
}

// Kill signals the container's main process.
func (e *Executor) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	ctx = e.WithNamespace(ctx)
	c, err := e.load(ctx, id)
	if err != nil {
		return err
	}
	t, err := task(ctx, c)
	if err != nil {
		return err
	}
	if t == nil {
		return fmt.Errorf("container %s has no task: %w", id, runtime.ErrNotFound)
	}
	if err := t.Kill(ctx, sig); err != nil {
		return fmt.Errorf("container %s: signal %d: %w", id, sig, err)
	}
	return nil
}

// Remove kills and deletes the task, then the container and its snapshot.
// The log file is left to its owner.
func (e *Executor) Remove(ctx context.Context, id string) error {
	ctx = e.WithNamespace(ctx)
	c, err := e.client.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("container %s: %w", id, err)
	}
	t, err := task(ctx, c)
	if err != nil {
		return err
	}
	if t != nil {
		kctx, cancel := context.WithTimeout(ctx, killWait)
		_, err := t.Delete(kctx, client.WithProcessKill)
		cancel()
		if err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("container %s: delete task: %w", id, err)
		}
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: delete: %w", id, err)
	}
	return nil
}

// Inspect returns what containerd knows of the container.
func (e *Executor) Inspect(ctx context.Context, id string) (runtime.Container, error) {
	ctx = e.WithNamespace(ctx)
	c, err := e.load(ctx, id)
	if err != nil {
		return runtime.Container{}, err
	}
	return e.inspect(ctx, c)
}

// List returns the containers whose labels include all of labels, by ID.
func (e *Executor) List(ctx context.Context, labels map[string]string) ([]runtime.Container, error) {
	ctx = e.WithNamespace(ctx)
	cs, err := e.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []runtime.Container
	for _, c := range cs {
		v, err := e.inspect(ctx, c)
		if errdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		if runtime.MatchLabels(v.Labels, labels) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b runtime.Container) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (e *Executor) inspect(ctx context.Context, c client.Container) (runtime.Container, error) {
	info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return runtime.Container{}, fmt.Errorf("container %s: %w", c.ID(), err)
	}
	v := runtime.Container{
		ID:        info.ID,
		Image:     info.Image,
		Labels:    map[string]string{},
		LogPath:   info.Labels[labelLogPath],
		State:     runtime.StateCreated,
		CreatedAt: info.CreatedAt,
	}
	for k, val := range info.Labels {
		if !strings.HasPrefix(k, labelPrefix) {
			v.Labels[k] = val
		}
	}
	if s := info.Labels[labelStartedAt]; s != "" {
		v.StartedAt, _ = time.Parse(time.RFC3339Nano, s)
	}
	t, err := task(ctx, c)
	if err != nil || t == nil {
		return v, err
	}
	st, err := t.Status(ctx)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return v, nil // task deleted meanwhile
		}
		v.State = runtime.StateUnknown
		return v, nil
	}
	switch st.Status {
	case client.Running, client.Paused, client.Pausing:
		v.State, v.Pid = runtime.StateRunning, t.Pid()
	case client.Created:
		v.State = runtime.StateCreated
	case client.Stopped:
		v.State, v.ExitCode, v.ExitedAt = runtime.StateStopped, int(st.ExitStatus), st.ExitTime
	default:
		v.State = runtime.StateUnknown
	}
	return v, nil
}
