// Package apiserver implements the Control API on top of the state store:
// it validates requests, turns them into store writes, and maps errors to
// gRPC codes. It holds no state of its own.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/allocator"
	"github.com/warren-project/warren/internal/raftnode"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/seal"
	"github.com/warren-project/warren/internal/state"
)

// Images is how the API reaches the nodes' image stores.
type Images interface {
	// NormalizeRef returns the full form of ref, or why it is invalid.
	NormalizeRef(ref string) (string, error)
	// CheckImage returns nil when a task using ref can start: the image is
	// on a node or its registry knows it, asked with auth when not nil. The
	// error says which and why, and wraps ErrRegistryUnauthorized when the
	// registry refused access.
	CheckImage(ctx context.Context, ref string, auth *api.RegistryAuth) error
	ImportImage(ctx context.Context, r io.Reader, nodeIDs []string) ([]*api.Image, error)
	ListImages(ctx context.Context) ([]*api.Image, error)
}

// Config of the API server.
type Config struct {
	Store  *state.MemoryStore
	Images Images
	// Raft describes the consensus state for `cluster info`.
	Raft          func() *api.RaftInfo
	ManagerNodeID string
	StartedAt     time.Time
	Logger        *slog.Logger
	// MaxWait caps a blocking query's wait.
	MaxWait time.Duration
	// ManagerAddrs are the addresses a joining node can dial, for
	// GetJoinToken.
	ManagerAddrs func() []string
	// CA signs admin certificates; nil on a manager without the root key.
	CA *ca.CA
	// Sealer seals services' registry credentials with the cluster's data
	// key; nil refuses credentials.
	Sealer *seal.Sealer
	// Logs reaches the nodes for their tasks' logs: the dispatcher. nil
	// makes Logs Unavailable.
	Logs LogSource
	// Exec reaches the nodes to run commands in their tasks: the
	// dispatcher. nil makes Exec Unavailable.
	Exec ExecSource
	// Mesh has the nodes' reports of their WireGuard peers: the
	// dispatcher. nil shows no peers.
	Mesh MeshSource
	// Managers changes the Raft membership; nil refuses to remove managers.
	Managers Membership
	// Leader relays logs and exec to the leader from a follower; nil
	// serves them here.
	Leader Leader
	// Backup writes backups of the cluster: the manager. nil makes
	// BackupCluster Unavailable.
	Backup Backuper
}

// Membership changes the Raft membership: the manager.
type Membership interface {
	RemoveManager(ctx context.Context, nodeID string) error
	// CheckDemotion says why manager nodeID cannot leave Raft now (it is
	// the last one; the rest would lack quorum), or nil.
	CheckDemotion(nodeID string) error
}

// Server implements api.ControlServer.
type Server struct {
	api.UnimplementedControlServer
	cfg Config
	log *slog.Logger
}

// New returns a Control API server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 5 * time.Minute
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("module", "apiserver")}
}

var _ api.ControlServer = (*Server)(nil)

// invalidArgument marks an error as the caller's: InvalidArgument.
type invalidArgument struct{ err error }

func (e invalidArgument) Error() string { return e.err.Error() }
func (e invalidArgument) Unwrap() error { return e.err }

func invalid(format string, args ...any) error {
	return invalidArgument{fmt.Errorf(format, args...)}
}

// toStatus maps an error to the gRPC code a client can act on.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var inv invalidArgument
	var pre preconditionError
	code := codes.Internal
	switch {
	case errors.As(err, &inv), errors.Is(err, state.ErrInvalid), errors.Is(err, state.ErrAmbiguous), errors.Is(err, ca.ErrInvalid):
		code = codes.InvalidArgument
	case errors.As(err, &pre), errors.Is(err, ca.ErrNoSigningKey):
		code = codes.FailedPrecondition
	case errors.Is(err, state.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, state.ErrNameConflict), errors.Is(err, state.ErrAlreadyExists), errors.Is(err, allocator.ErrPortInUse):
		code = codes.AlreadyExists
	case errors.Is(err, state.ErrVersionConflict):
		code = codes.FailedPrecondition
	case errors.Is(err, raftnode.ErrNoLeader):
		code = codes.Unavailable
	case errors.Is(err, raftnode.ErrMaybeApplied):
		code = codes.Unknown // not retried blindly: read the state first
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}
