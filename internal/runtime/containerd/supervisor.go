package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxSocketPath is the longest unix socket path: sun_path holds 108 bytes
// with the NUL, and containerd also listens on ADDRESS.ttrpc.
const maxSocketPath = 107 - len(".ttrpc")

// Supervised is a containerd daemon: one StartOwnContainerd runs and keeps
// alive, or one that already answered (then Owned is false and Stop does
// nothing).
type Supervised struct {
	// Address is the daemon's socket, for Config.Address.
	Address string
	// Dir holds config.toml, containerd.log, root/ and state/ of an owned daemon.
	Dir string

	owned   bool
	bin     string
	log     *slog.Logger
	logPath string

	mu       sync.Mutex
	cur      *proc
	restarts int
	stopping bool
	stopCh   chan struct{}
	stopOnce sync.Once
	monitor  chan struct{} // closed when the monitor loop has returned
}

type proc struct {
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{}
	err     error // cmd.Wait's, once exited is closed
}

type supervisorOptions struct {
	address      string
	binary       string
	logger       *slog.Logger
	startTimeout time.Duration
}

// SupervisorOption configures StartOwnContainerd.
type SupervisorOption func(*supervisorOptions)

// WithAddress sets the socket path (default DATADIR/containerd/containerd.sock).
// It must be at most 101 bytes long (a unix socket path limit).
func WithAddress(socket string) SupervisorOption {
	return func(o *supervisorOptions) { o.address = socket }
}

// WithBinary sets the containerd binary (default "containerd" on PATH).
func WithBinary(path string) SupervisorOption {
	return func(o *supervisorOptions) { o.binary = path }
}

// WithLogger sets the logger of the supervisor (default slog.Default()).
func WithLogger(l *slog.Logger) SupervisorOption {
	return func(o *supervisorOptions) { o.logger = l }
}

// WithStartTimeout sets how long to wait for the daemon to answer (default 30s).
func WithStartTimeout(d time.Duration) SupervisorOption {
	return func(o *supervisorOptions) { o.startTimeout = d }
}

// StartOwnContainerd returns the containerd answering at the socket, or,
// when none answers, starts one with its config, root, state, socket and log
// under dataDir/containerd/ and keeps it running: it is restarted, with
// back-off, whenever it dies, until Stop. The daemon runs in its own process
// group, so a signal sent to Warren's group does not reach it; its shims,
// and so the containers, outlive it.
func StartOwnContainerd(ctx context.Context, dataDir string, opts ...SupervisorOption) (*Supervised, error) {
	o := supervisorOptions{binary: "containerd", logger: slog.Default(), startTimeout: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	dir, err := filepath.Abs(filepath.Join(dataDir, "containerd"))
	if err != nil {
		return nil, err
	}
	if o.address == "" {
		o.address = filepath.Join(dir, "containerd.sock")
	}
	s := &Supervised{
		Address: o.address,
		Dir:     dir,
		log:     o.logger.With("module", "runtime.containerd.supervisor", "address", o.address),
		logPath: filepath.Join(dir, "containerd.log"),
		stopCh:  make(chan struct{}),
		monitor: make(chan struct{}),
	}
	if Reachable(ctx, o.address) {
		close(s.monitor)
		return s, nil
	}
	if len(o.address) > maxSocketPath {
		return nil, fmt.Errorf("containerd socket path %s is %d bytes, over the %d a unix socket allows: choose a shorter one with WithAddress", o.address, len(o.address), maxSocketPath)
	}
	if s.bin, err = exec.LookPath(o.binary); err != nil {
		return nil, fmt.Errorf("nothing answers at %s and no containerd binary to start: %w", o.address, err)
	}
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	s.owned = true
	p, err := s.spawn()
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, p, o.startTimeout); err != nil {
		s.terminate(p, 5*time.Second)
		return nil, err
	}
	go s.run(p)
	s.log.Info("containerd started", "pid", p.cmd.Process.Pid, "dir", dir)
	return s, nil
}

func (s *Supervised) configPath() string { return filepath.Join(s.Dir, "config.toml") }

func (s *Supervised) writeConfig() error {
	for _, d := range []string{s.Dir, filepath.Join(s.Dir, "root"), filepath.Join(s.Dir, "state"), filepath.Dir(s.Address)} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("containerd directory: %w", err)
		}
	}
	cfg := fmt.Sprintf(`# Written by Warren for the containerd it supervises.
version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  level = "info"
`, filepath.Join(s.Dir, "root"), filepath.Join(s.Dir, "state"), s.Address, s.Address+".ttrpc")
	if err := os.WriteFile(s.configPath(), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("containerd config: %w", err)
	}
	return nil
}

// spawn starts the daemon once.
func (s *Supervised) spawn() (*proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil, errors.New("containerd supervisor is stopping")
	}
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("containerd log: %w", err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(s.bin, "--config", s.configPath())
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.bin, err)
	}
	p := &proc{cmd: cmd, started: time.Now(), exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	s.cur = p
	return p, nil
}

// waitReady polls the socket until the daemon answers.
func (s *Supervised) waitReady(ctx context.Context, p *proc, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if Reachable(ctx, s.Address) {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("containerd exited at start (%v); end of %s:\n%s", p.err, s.logPath, s.logTail())
		case <-deadline.C:
			return fmt.Errorf("containerd did not answer at %s within %s; end of %s:\n%s", s.Address, timeout, s.logPath, s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// run restarts the daemon whenever it exits, until Stop.
func (s *Supervised) run(p *proc) {
	defer close(s.monitor)
	const minBackoff, maxBackoff = 500 * time.Millisecond, 30 * time.Second
	backoff := minBackoff
	for {
		if p != nil {
			select {
			case <-p.exited:
			case <-s.stopCh:
				return
			}
			if time.Since(p.started) > time.Minute {
				backoff = minBackoff
			}
			s.log.Warn("containerd exited; restarting", "error", p.err, "backoff", backoff, "log", s.logPath)
		}
		select {
		case <-s.stopCh:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
		np, err := s.spawn()
		if err != nil {
			s.log.Error("cannot restart containerd", "error", err)
			p = nil
			continue
		}
		s.mu.Lock()
		s.restarts++
		s.mu.Unlock()
		p = np
	}
}

// Owned tells whether this supervisor started the daemon.
func (s *Supervised) Owned() bool { return s.owned }

// Pid returns the daemon's current pid (0 if not owned or not running).
func (s *Supervised) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0
	}
	select {
	case <-s.cur.exited:
		return 0
	default:
		return s.cur.cmd.Process.Pid
	}
}

// Restarts returns how many times the daemon was restarted after dying.
func (s *Supervised) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// LogPath returns the daemon's log file.
func (s *Supervised) LogPath() string { return s.logPath }

// Stop sends SIGTERM to an owned daemon and waits for it to exit (SIGKILL
// after 20 s). Containers keep running in their shims. Safe to call twice.
func (s *Supervised) Stop() error {
	if !s.owned {
		return nil
	}
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		close(s.stopCh)
		p := s.cur
		s.mu.Unlock()
		<-s.monitor
		if p != nil {
			s.terminate(p, 20*time.Second)
		}
		s.log.Info("containerd stopped")
	})
	return nil
}

func (s *Supervised) terminate(p *proc, grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return
	case <-time.After(grace):
	}
	s.log.Warn("containerd did not exit on SIGTERM; killing it", "grace", grace)
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// logTail returns the end of the daemon's log.
func (s *Supervised) logTail() string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	const n = 4096
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	data, _ := io.ReadAll(f)
	return strings.TrimSpace(string(data))
}
