package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
)

// listenUnix opens the local CLI's socket, root-only. A stale socket file
// is replaced; a live one means another manager uses it.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another Warren manager is already serving at %s: stop it, or choose another socket with --socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("make %s root-only: %w", path, err)
	}
	return l, nil
}

// newGRPCServer returns a gRPC server. The remote one does mutual TLS and
// lets each certificate's role call what it may; the local one (unix socket,
// in-process agent) trusts its callers, whom the file system vetted.
func newGRPCServer(remoteTLS *tls.Config, consistent func(context.Context) error, isManager func(nodeID string) bool) *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(16 << 20),
		// Nodes and managers ping idle connections (see dialPeer), so a
		// dead peer is noticed in seconds, not after TCP's minutes.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		// A consistent read catches up first: whether a caller's node is a
		// manager is itself read from the state.
		if wantsConsistentRead(ctx) {
			if err := consistent(ctx); err != nil {
				return nil, status.Errorf(codes.Unavailable, "a consistent read needs the leader: %v", err)
			}
		}
		if remoteTLS != nil {
			if err := authorize(ctx, info.FullMethod, isManager); err != nil {
				return nil, err
			}
		}
		return h(ctx, req)
	}
	opts = append(opts, grpc.UnaryInterceptor(unary))
	if remoteTLS != nil {
		opts = append(opts,
			grpc.Creds(credentials.NewTLS(remoteTLS)),
			grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				if err := authorize(ss.Context(), info.FullMethod, isManager); err != nil {
					return err
				}
				return h(srv, ss)
			}))
	}
	return grpc.NewServer(opts...)
}

// joinMethod is the one call a caller without a certificate may make: a
// node joining with a token.
var joinMethod = "/" + api.NodeCA_ServiceDesc.ServiceName + "/Join"

// errNoLongerManager is how a manager refuses the certificate of a demoted
// one, which recognises it (isDemotedRefusal).
const errNoLongerManager = "is no longer a manager of this cluster"

// authorize checks a remote caller's certificate: admins and managers may
// use the Control API; any node of the cluster may open its own session
// (the dispatcher checks it is its own) and renew its certificate. Only
// Join needs no certificate. A manager's certificate counts only while
// isManager says its node is one: a demoted manager's certificate stays
// valid until it expires, but no longer opens the Control API or Raft
// membership calls.
func authorize(ctx context.Context, method string, isManager func(nodeID string) bool) error {
	if method == joinMethod {
		return nil
	}
	id, ok := ca.IdentityFromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "a client certificate of this cluster's CA is required: join with a token, or use an admin bundle (--tls-dir)")
	}
	control := strings.HasPrefix(method, "/"+api.Control_ServiceDesc.ServiceName+"/")
	raft := strings.HasPrefix(method, "/"+api.RaftMembership_ServiceDesc.ServiceName+"/")
	if control && id.Role != ca.RoleAdmin && id.Role != ca.RoleManager {
		return status.Errorf(codes.PermissionDenied, "a %s certificate cannot call %s: use an admin certificate", id.Role, method)
	}
	if raft && id.Role != ca.RoleManager {
		return status.Errorf(codes.PermissionDenied, "only managers may call %s", method)
	}
	if (control || raft) && id.Role == ca.RoleManager && isManager != nil && !isManager(id.NodeID) {
		return status.Errorf(codes.PermissionDenied, "node %s %s: its manager certificate cannot call %s", id.NodeID, errNoLongerManager, method)
	}
	return nil
}

// serve runs s on l until s stops.
func serve(s *grpc.Server, l net.Listener) error {
	if err := s.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// inProcess is the local agent's connection to the dispatcher: real gRPC,
// no network.
type inProcess struct {
	l *bufconn.Listener
}

func newInProcess() *inProcess { return &inProcess{l: bufconn.Listen(1 << 20)} }

func (p *inProcess) dial() (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///warren-local",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return p.l.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// newGateway serves the JSON API, calling the gRPC API over the local socket.
func newGateway(ctx context.Context, socket string) (http.Handler, error) {
	mux := runtime.NewServeMux()
	err := api.RegisterControlHandlerFromEndpoint(ctx, mux, "unix://"+socket,
		[]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())})
	if err != nil {
		return nil, fmt.Errorf("REST gateway: %w", err)
	}
	return mux, nil
}

// ConsistentReadHeader asks a manager for a linearizable read: a follower
// first catches up with the leader's state as of the call.
const ConsistentReadHeader = "warren-read"

func wantsConsistentRead(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	return ok && slices.Contains(md.Get(ConsistentReadHeader), "consistent")
}
