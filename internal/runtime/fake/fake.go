// Package fake is an in-memory runtime.Executor for tests of the packages
// that drive containers. Containers "run" from Start until Kill, Stop, Remove
// or the test calls Exit; nothing is executed. Safe for concurrent use.
package fake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warren-project/warren/internal/runtime"
)

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("fake executor: closed")

// Executor is the fake runtime.Executor. The zero value is not usable: use New.
type Executor struct {
	mu         sync.Mutex
	now        func() time.Time
	images     map[string]runtime.Image
	pullErrs   map[string]error
	failNext   map[string][]error
	containers map[string]*container
	nextPid    uint32
	closed     bool

	// Set through SetExec and SetImageHealthcheck (exec.go).
	exec         ExecFunc
	execs        map[string][][]string
	healthchecks map[string]*runtime.Healthcheck
	// Set through SetExecAttach (exec_attach.go).
	attach AttachFunc
}

type container struct {
	spec      runtime.Spec
	image     string
	createdAt time.Time
	run       *run // nil until started
}

// run is one execution of a container's process.
type run struct {
	pid       uint32
	startedAt time.Time
	exit      runtime.Exit // valid once done is closed
	done      chan struct{}
}

func (r *run) running() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

var _ runtime.Executor = (*Executor)(nil)

// New returns an empty fake executor with a wall clock.
func New() *Executor {
	return &Executor{
		now:        time.Now,
		images:     map[string]runtime.Image{},
		pullErrs:   map[string]error{},
		failNext:   map[string][]error{},
		containers: map[string]*container{},
		nextPid:    1000,
	}
}

// SetClock replaces the clock used for the times it reports.
func (f *Executor) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// AddImage stores images as if pulled. It panics on an invalid reference.
func (f *Executor) AddImage(refs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ref := range refs {
		n, err := runtime.NormalizeRef(ref)
		if err != nil {
			panic(err)
		}
		f.addImageLocked(n)
	}
}

func (f *Executor) addImageLocked(ref string) {
	f.images[ref] = runtime.Image{
		Ref:     ref,
		Digest:  fmt.Sprintf("sha256:%064x", len(f.images)+1),
		Size:    1 << 20,
		Created: f.now(),
	}
}

// SetPullError makes PullImage of ref fail with err (nil clears it).
func (f *Executor) SetPullError(ref string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, nerr := runtime.NormalizeRef(ref)
	if nerr != nil {
		panic(nerr)
	}
	if err == nil {
		delete(f.pullErrs, n)
		return
	}
	f.pullErrs[n] = err
}

// FailNext makes the next call of the named method ("Create", "Start",
// "Stop", ...) return err without doing anything. Calls queue up.
func (f *Executor) FailNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[method] = append(f.failNext[method], err)
}

// Exit ends the running process of container id with code, as if it had
// exited on its own.
func (f *Executor) Exit(id string, code int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	if c.run == nil || !c.run.running() {
		return fmt.Errorf("container %s is not running", id)
	}
	f.exitLocked(c, code)
	return nil
}

// Spec returns the spec container id was created with.
func (f *Executor) Spec(id string) (runtime.Spec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return runtime.Spec{}, false
	}
	return cloneSpec(c.spec), true
}

func (f *Executor) exitLocked(c *container, code int) {
	c.run.exit = runtime.Exit{Code: code, At: f.now()}
	close(c.run.done)
}

// enter takes the lock and returns an injected or closed error, if any.
// On a nil error the caller must unlock.
func (f *Executor) enter(method string) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	if errs := f.failNext[method]; len(errs) > 0 {
		f.failNext[method] = errs[1:]
		f.mu.Unlock()
		return errs[0]
	}
	return nil
}

func (f *Executor) NormalizeRef(ref string) (string, error) { return runtime.NormalizeRef(ref) }

func (f *Executor) PullImage(ctx context.Context, ref string, _ *runtime.RegistryAuth, progress func(runtime.PullProgress)) error {
	n, err := runtime.NormalizeRef(ref)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.enter("PullImage"); err != nil {
		return err
	}
	if err := f.pullErrs[n]; err != nil {
		f.mu.Unlock()
		return err
	}
	if _, ok := f.images[n]; !ok {
		f.addImageLocked(n)
	}
	size := f.images[n].Size
	f.mu.Unlock()
	if progress != nil {
		progress(runtime.PullProgress{Ref: n, Done: size, Total: size, Status: "done"})
	}
	return nil
}

func (f *Executor) HasImage(_ context.Context, ref string) (bool, error) {
	n, err := runtime.NormalizeRef(ref)
	if err != nil {
		return false, err
	}
	if err := f.enter("HasImage"); err != nil {
		return false, err
	}
	defer f.mu.Unlock()
	_, ok := f.images[n]
	return ok, nil
}

// ImportImage reads r to the end and stores one image for every line
// "ref" in it (a plain-text stand-in for an image archive).
func (f *Executor) ImportImage(_ context.Context, r io.Reader) ([]runtime.Image, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		n, err := runtime.NormalizeRef(string(line))
		if err != nil {
			return nil, err
		}
		refs = append(refs, n)
	}
	if err := f.enter("ImportImage"); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	out := make([]runtime.Image, 0, len(refs))
	for _, n := range refs {
		f.addImageLocked(n)
		out = append(out, f.images[n])
	}
	return out, nil
}

func (f *Executor) ListImages(context.Context) ([]runtime.Image, error) {
	if err := f.enter("ListImages"); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	out := slices.Collect(maps.Values(f.images))
	slices.SortFunc(out, func(a, b runtime.Image) int { return strings.Compare(a.Ref, b.Ref) })
	return out, nil
}

func (f *Executor) Create(_ context.Context, spec runtime.Spec) error {
	if spec.ID == "" {
		return fmt.Errorf("container ID is empty: %w", runtime.ErrInvalidArgument)
	}
	n, err := runtime.NormalizeRef(spec.Image)
	if err != nil {
		return err
	}
	if err := f.enter("Create"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	if _, ok := f.containers[spec.ID]; ok {
		return fmt.Errorf("container %s: %w", spec.ID, runtime.ErrAlreadyExists)
	}
	if _, ok := f.images[n]; !ok {
		return fmt.Errorf("image %s: %w", n, runtime.ErrNotFound)
	}
	f.containers[spec.ID] = &container{spec: cloneSpec(spec), image: n, createdAt: f.now()}
	return nil
}

func (f *Executor) Start(_ context.Context, id string) error {
	if err := f.enter("Start"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	if c.run != nil && c.run.running() {
		return fmt.Errorf("container %s is already running: %w", id, runtime.ErrAlreadyExists)
	}
	f.nextPid++
	c.run = &run{pid: f.nextPid, startedAt: f.now(), done: make(chan struct{})}
	return nil
}

func (f *Executor) Wait(ctx context.Context, id string) (<-chan runtime.Exit, error) {
	if err := f.enter("Wait"); err != nil {
		return nil, err
	}
	c, ok := f.containers[id]
	if !ok || c.run == nil {
		f.mu.Unlock()
		return nil, fmt.Errorf("task of container %s: %w", id, runtime.ErrNotFound)
	}
	r := c.run
	f.mu.Unlock()
	ch := make(chan runtime.Exit, 1)
	go func() {
		defer close(ch)
		select {
		case <-r.done:
			ch <- r.exit // written before done was closed
		case <-ctx.Done():
			ch <- runtime.Exit{Code: -1, At: time.Now(), Err: ctx.Err()}
		}
	}()
	return ch, nil
}

// Stop ends a running container at once with code 143 (SIGTERM); grace is
// not waited for.
func (f *Executor) Stop(_ context.Context, id string, _ time.Duration) error {
	if err := f.enter("Stop"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	if c.run != nil && c.run.running() {
		f.exitLocked(c, runtime.ExitCodeFromSignal(syscall.SIGTERM))
	}
	return nil
}

// Kill ends a running container with code 128+sig; signal 0 only checks
// that it runs.
func (f *Executor) Kill(_ context.Context, id string, sig syscall.Signal) error {
	if err := f.enter("Kill"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	if c.run == nil || !c.run.running() {
		return fmt.Errorf("container %s: process not running: %w", id, runtime.ErrNotFound)
	}
	if sig != 0 {
		f.exitLocked(c, runtime.ExitCodeFromSignal(sig))
	}
	return nil
}

func (f *Executor) Remove(_ context.Context, id string) error {
	if err := f.enter("Remove"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return nil
	}
	if c.run != nil && c.run.running() {
		f.exitLocked(c, runtime.ExitCodeFromSignal(syscall.SIGKILL))
	}
	delete(f.containers, id)
	return nil
}

func (f *Executor) Inspect(_ context.Context, id string) (runtime.Container, error) {
	if err := f.enter("Inspect"); err != nil {
		return runtime.Container{}, err
	}
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return runtime.Container{}, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	return c.view(), nil
}

func (f *Executor) List(_ context.Context, labels map[string]string) ([]runtime.Container, error) {
	if err := f.enter("List"); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	var out []runtime.Container
	for _, c := range f.containers {
		if runtime.MatchLabels(c.spec.Labels, labels) {
			out = append(out, c.view())
		}
	}
	slices.SortFunc(out, func(a, b runtime.Container) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Close makes every later call fail with ErrClosed. Waits in progress go on.
func (f *Executor) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (c *container) view() runtime.Container {
	v := runtime.Container{
		ID:        c.spec.ID,
		Image:     c.image,
		Labels:    maps.Clone(c.spec.Labels),
		LogPath:   c.spec.LogPath,
		State:     runtime.StateCreated,
		CreatedAt: c.createdAt,
	}
	if c.run == nil {
		return v
	}
	v.StartedAt = c.run.startedAt
	if c.run.running() {
		v.State, v.Pid = runtime.StateRunning, c.run.pid
		return v
	}
	v.State, v.ExitCode, v.ExitedAt = runtime.StateStopped, c.run.exit.Code, c.run.exit.At
	return v
}

func cloneSpec(s runtime.Spec) runtime.Spec {
	s.Command = slices.Clone(s.Command)
	s.Args = slices.Clone(s.Args)
	s.Env = slices.Clone(s.Env)
	s.Labels = maps.Clone(s.Labels)
	return s
}
