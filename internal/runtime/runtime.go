// Package runtime defines how Warren runs containers on a node: the Executor
// interface, the types it speaks, and the errors callers can test with
// errors.Is. The real implementation lives in runtime/containerd; an in-memory
// one for tests of other packages lives in runtime/fake.
package runtime

import (
	"context"
	"io"
	"syscall"
	"time"
)

// Spec describes a container to create. Without Network the container
// shares the host's network namespace, with the host's /etc/hosts and
// /etc/resolv.conf bind-mounted read-only.
type Spec struct {
	ID      string   // container ID, derived by the caller from the task ID
	Image   string   // image reference; normalized by the executor
	Command []string // when set, replaces the image entrypoint (and drops the image cmd)
	Args    []string // when set, replaces the image cmd
	Env     []string // KEY=VALUE, replacing or appended to the image env
	WorkDir string   // overrides the image working directory when set
	User    string   // overrides the image user when set ("name", "uid", "uid:gid")
	Labels  map[string]string

	NanoCPUs    int64 // CPU limit in 1e-9 CPUs (0 = none)
	MemoryBytes int64 // memory limit in bytes (0 = none)

	// LogPath is an absolute file path; the container's stdout and stderr
	// are appended to it as records (internal/logfile's format) by a
	// logging process the shim runs, so logging survives a restart of the
	// process that started the container. Empty discards the output.
	LogPath string
	// LogMaxSize and LogMaxFiles rotate the log: past LogMaxSize bytes,
	// LogPath becomes LogPath.1 (and so on) and a new file starts; LogMaxFiles
	// files are kept, LogPath included. 0 takes logfile's defaults.
	LogMaxSize  int64
	LogMaxFiles int

	// Network, when set, puts the container in a network namespace made
	// for it beforehand (the overlay), with its own /etc files.
	Network *NetworkAttachment
}

// NetworkAttachment is a network namespace prepared for a container: the
// container joins it, and its /etc/resolv.conf, /etc/hosts and
// /etc/hostname are these files, bind-mounted read-only.
type NetworkAttachment struct {
	NetNSPath  string
	ResolvConf string
	Hosts      string
	Hostname   string // file path
	HostName   string // the container's host name
}

// State is the observed state of a container.
type State int

const (
	StateUnknown State = iota // the runtime could not tell
	StateCreated              // container exists, its process is not running yet
	StateRunning              // its process runs (or is paused)
	StateStopped              // its process exited; ExitCode and ExitedAt are set
)

func (s State) String() string {
	switch s {
	case StateCreated:
		return "created"
	case StateRunning:
		return "running"
	case StateStopped:
		return "stopped"
	default:
		return "unknown"
	}
}

// Container is what the runtime knows of a container.
type Container struct {
	ID        string
	Image     string
	Labels    map[string]string // the Spec labels, nothing added
	LogPath   string
	State     State
	Pid       uint32 // host pid of the main process while running
	ExitCode  int    // when Stopped; 128+N when killed by signal N
	CreatedAt time.Time
	StartedAt time.Time // zero if never started
	ExitedAt  time.Time // when Stopped
}

// Exit is the end of a container's main process. Err is set, and Code is -1,
// when the wait itself failed (context ended, runtime unreachable): the
// process may still run, and the caller may Wait again.
type Exit struct {
	Code int
	At   time.Time
	Err  error
}

// PullProgress reports an image pull, in bytes summed over all the blobs
// known so far (Total grows as manifests are read).
type PullProgress struct {
	Ref    string
	Done   int64
	Total  int64
	Status string // "resolving", "downloading", "done"
}

// Image is an image stored on the node.
type Image struct {
	Ref     string // normalized reference
	Digest  string // digest of the manifest or index the ref points to
	Size    int64  // bytes of content for this platform
	Created time.Time
}

// ImageConfig is the part of an image's config the node uses beyond what
// Create applies itself.
type ImageConfig struct {
	Healthcheck *Healthcheck // nil when the image declares none
}

// Healthcheck is an image's HEALTHCHECK: Docker's extension of the OCI image
// config ("Healthcheck" in its "config"), with durations in nanoseconds as
// Docker writes them; zero means "the default".
type Healthcheck struct {
	// Test is ["NONE"] (checks off), ["CMD", arg...] (run as is) or
	// ["CMD-SHELL", command] (run by /bin/sh -c). Empty means none.
	Test          []string      `json:",omitempty"`
	Interval      time.Duration `json:",omitempty"`
	Timeout       time.Duration `json:",omitempty"`
	StartPeriod   time.Duration `json:",omitempty"`
	StartInterval time.Duration `json:",omitempty"`
	Retries       int           `json:",omitempty"`
}

// ExecOutputLimit bounds each output stream Exec returns: a probe's output
// is for a person to glance at, and must not grow the agent's memory.
const ExecOutputLimit = 4096

// ExecOptions are the streams and terminal of an ExecAttach.
type ExecOptions struct {
	TTY    bool
	Stdin  io.Reader // nil: the command gets no input
	Stdout io.Writer // nil: output discarded
	Stderr io.Writer // nil: output discarded (unused with TTY)
	// Size is the terminal's first size, Resize its later ones (TTY only).
	Size   TerminalSize
	Resize <-chan TerminalSize
	Env    []string // KEY=VALUE added to the process's environment
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// RegistryAuth holds registry credentials; a nil *RegistryAuth means anonymous.
type RegistryAuth struct {
	Username string
	Password string
}

// Executor runs containers on one node. Every method is safe for concurrent use.
//
// Errors wrap ErrNotFound, ErrAlreadyExists or ErrInvalidArgument where the
// documentation says so; anything else is a runtime failure (often temporary).
type Executor interface {
	// NormalizeRef turns a short reference into a full one ("nginx" ->
	// "docker.io/library/nginx:latest"); ErrInvalidArgument on invalid refs.
	NormalizeRef(ref string) (string, error)
	// PullImage pulls and unpacks an image. progress, if not nil, is called
	// periodically and once at the end (Status "done").
	PullImage(ctx context.Context, ref string, auth *RegistryAuth, progress func(PullProgress)) error
	// HasImage tells whether the image is stored on the node.
	HasImage(ctx context.Context, ref string) (bool, error)
	// ImportImage reads an OCI image layout tar or a docker-save tar, stores
	// and unpacks its images, and returns them.
	ImportImage(ctx context.Context, r io.Reader) ([]Image, error)
	ListImages(ctx context.Context) ([]Image, error)

	// Create makes a container from a stored image (ErrNotFound if the
	// image is absent, ErrAlreadyExists if the ID is taken).
	Create(ctx context.Context, spec Spec) error
	// Start starts the container's process. A container whose process has
	// exited is started again in place. ErrAlreadyExists if it is running,
	// ErrNotFound if there is no such container.
	Start(ctx context.Context, id string) error
	// Wait returns a channel that receives one Exit when the current (or
	// last) process of the container ends, then is closed. It works on
	// processes started by another Executor or an earlier process.
	// ErrNotFound if the container was never started.
	Wait(ctx context.Context, id string) (<-chan Exit, error)
	// Stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
	// No error if the container is not running; ErrNotFound if absent.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Kill sends a signal to the main process. ErrNotFound if the container
	// or its process does not exist.
	Kill(ctx context.Context, id string, sig syscall.Signal) error
	// Remove kills the process if needed and deletes the container and its
	// filesystem. No error if absent.
	Remove(ctx context.Context, id string) error
	// Inspect returns the container (ErrNotFound if absent).
	Inspect(ctx context.Context, id string) (Container, error)
	// List returns the containers whose labels include all of labels.
	List(ctx context.Context, labels map[string]string) ([]Container, error)

	// ImageConfig returns what the node needs of a stored image's config
	// (ErrNotFound if the image is absent).
	ImageConfig(ctx context.Context, ref string) (ImageConfig, error)
	// Exec runs cmd in the running container id, as its main process runs
	// (user, environment, working directory), without a terminal or stdin,
	// and returns its exit code and output: stdout then stderr, each cut at
	// ExecOutputLimit bytes. After timeout (0: none) the command is killed
	// and the error wraps context.DeadlineExceeded. An error means the
	// command did not run to its end (code -1): ErrNotFound if the container
	// does not run, a runtime error if cmd[0] cannot be executed.
	Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (exitCode int, output []byte, err error)
	// ExecAttach runs cmd in the running container id, as Exec does, but
	// streams: stdin from opts.Stdin (its EOF closes the command's stdin),
	// output to opts.Stdout and opts.Stderr as it comes, in a terminal when
	// opts.TTY (stderr then goes to Stdout). It returns the exit code once
	// the command ends; when ctx ends first the command is killed and the
	// error wraps ctx's. Errors as Exec's.
	ExecAttach(ctx context.Context, id string, cmd []string, opts ExecOptions) (exitCode int, err error)

	Close() error
}

// ExitCodeFromSignal is the exit code shells and runtimes report for a
// process killed by sig.
func ExitCodeFromSignal(sig syscall.Signal) int { return 128 + int(sig) }

// MatchLabels tells whether have includes every key and value of want.
func MatchLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}
