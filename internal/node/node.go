// Package node runs a worker node: it joins the cluster with a token (or
// resumes with the credentials in its data dir), keeps its certificate
// fresh, and runs the agent against the managers over mutual TLS, failing
// over between them as the Raft leader (the one serving sessions) changes.
package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/hostinfo"
	"github.com/warren-project/warren/internal/network/overlay"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/containerd"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/join"
	"github.com/warren-project/warren/internal/worker"
)

// Config of a worker node.
type Config struct {
	DataDir string
	// ManagerAddr is the manager to join through; later starts try it
	// first, then the managers learnt from sessions (saved in ManagersFile)
	// and at join.
	ManagerAddr string
	// Token admits the node the first time; a node with credentials in its
	// data dir needs none.
	Token         string
	AdvertiseAddr string
	// ContainerdSocket is the containerd to use; when none answers there
	// and a containerd binary is on PATH, the node runs its own.
	ContainerdSocket string
	// Executor replaces containerd (tests pass a fake).
	Executor runtime.Executor
	// Description replaces what the node reports of its host (tests pass
	// nodes of different sizes).
	Description *api.NodeDescription
	// Overlay sets up the node's part of the cluster network.
	Overlay overlay.Options
	// Network replaces the overlay controller (tests pass a fake).
	Network worker.Network
	Logger  *slog.Logger
}

// Node is a running worker.
type Node struct {
	cfg   Config
	log   *slog.Logger
	creds *join.Credentials
	ready chan struct{}
	// promoted gets a value when a session names the manager role; role
	// is the role the sessions named last.
	promoted chan struct{}
	role     atomic.Int32
}

// New checks cfg; Run does the work.
func New(cfg Config) (*Node, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("a data dir is required (--data-dir)")
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = abs
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Description == nil {
		cfg.Description = hostinfo.Describe()
	}
	return &Node{cfg: cfg, log: cfg.Logger.With("module", "node"), ready: make(chan struct{}), promoted: make(chan struct{}, 1)}, nil
}

// Ready is closed once the node has its credentials and runs its agent.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// NodeID is the node's ID, known once Ready.
func (n *Node) NodeID() string { return n.creds.NodeID }

// Run joins (or resumes), then runs until ctx ends. Containers keep running
// after it returns. When the cluster promotes the node, Run turns its data
// dir into a manager's and returns an error matching join.ErrRoleChanged:
// the caller runs the node as a manager.
func (n *Node) Run(ctx context.Context) error {
	if err := n.credentials(ctx); err != nil {
		return err
	}
	if n.creds.Role != ca.RoleWorker {
		return fmt.Errorf("this node holds %s credentials: managers run with \"warren cluster init\"; join with a worker token", n.creds.Role)
	}
	// A demotion that stopped half way may have left a manager's files.
	if err := join.RemoveManagerFiles(n.cfg.DataDir); err != nil {
		n.log.Warn("remove files left from when this node was a manager", "err", err)
	}
	kp, err := ca.NewKeyPair(n.creds.CertPEM, n.creds.KeyPEM)
	if err != nil {
		return fmt.Errorf("the node certificate in %s: %w", n.cfg.DataDir, err)
	}
	caCert, err := ca.FromCertPEM(n.creds.CAPEM)
	if err != nil {
		return err
	}

	exec := n.cfg.Executor
	if exec == nil {
		e, closeExec, err := containerd.Connect(ctx, n.cfg.ContainerdSocket, n.cfg.DataDir, n.cfg.Logger)
		if err != nil {
			return err
		}
		defer closeExec()
		exec = e
	}

	pool, err := n.managerPool(caCert, kp)
	if err != nil {
		return err
	}
	defer pool.Close()

	nw := n.cfg.Network
	if nw == nil {
		ovl, err := overlay.Start(n.cfg.Overlay, n.creds.NodeID, n.cfg.DataDir, n.cfg.AdvertiseAddr, n.cfg.Logger)
		if err != nil {
			return fmt.Errorf("overlay network: %w", err)
		}
		if ovl != nil {
			defer ovl.Close()
			nw = ovl
		}
	}
	agent, err := worker.New(worker.Config{
		NodeID: n.creds.NodeID, Description: n.cfg.Description, Addr: n.cfg.AdvertiseAddr,
		Executor: exec, DataDir: n.cfg.DataDir, Logger: n.cfg.Logger, Network: nw,
		Dial: pool.Dial, OnManagers: pool.Learn, OnRole: n.onRole,
	})
	if err != nil {
		return err
	}
	renewer := join.NewRenewer(join.RenewerConfig{
		KeyPair: kp, DataDir: n.cfg.DataDir, Logger: n.cfg.Logger,
		Client: func(context.Context) (api.NodeCAClient, error) {
			conn, err := pool.Conn()
			if err != nil {
				return nil, err
			}
			return api.NewNodeCAClient(conn), nil
		},
	})

	var wg sync.WaitGroup
	for _, part := range []interface {
		Run(context.Context) error
		Stop()
	}{agent, renewer} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := part.Run(ctx); err != nil && ctx.Err() == nil {
				n.log.Error("node part stopped", "part", fmt.Sprintf("%T", part), "err", err)
			}
		}()
	}
	close(n.ready)
	n.log.Info("node running", "node.id", n.creds.NodeID, "managers", pool.Addrs())
	// A renewal racing the promotion cannot undo it: the renewer refuses a
	// certificate of another role, and a manager whose certificate lacks
	// its hosts reissues it from its own CA when it starts.
	var switched error
	for switched == nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-n.promoted:
			switched = n.promote(ctx, pool)
		}
	}
	agent.Stop()
	renewer.Stop()
	wg.Wait()
	if switched != nil {
		return switched
	}
	n.log.Info("node stopping; containers keep running")
	return nil
}

// onRole hears the role the node's sessions name.
func (n *Node) onRole(role api.NodeRole) {
	n.role.Store(int32(role))
	if role != api.NodeRole_NODE_ROLE_MANAGER {
		return
	}
	select {
	case n.promoted <- struct{}{}:
	default:
	}
}

// promoteRetry is the pause between attempts to fetch a manager's
// credentials after a promotion.
const promoteRetry = 2 * time.Second

// promote fetches the manager certificate and the cluster's keys, saves
// them in a manager's layout, and returns join.ErrRoleChanged; the agent
// runs on meanwhile. It returns nil when ctx ends first, or when the
// sessions name the worker role again (the promotion was undone).
func (n *Node) promote(ctx context.Context, pool *managerPool) error {
	n.log.Info("promoted to manager: fetching a manager certificate and the cluster's keys")
	for n.role.Load() == int32(api.NodeRole_NODE_ROLE_MANAGER) {
		conn, err := pool.Conn()
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err = join.Promote(cctx, api.NewNodeCAClient(conn), n.cfg.DataDir, pool.Addrs())
			cancel()
		}
		if err == nil {
			n.log.Info("promoted: this node now runs as a manager", "node.id", n.creds.NodeID)
			return fmt.Errorf("%w: it is now a manager", join.ErrRoleChanged)
		}
		n.log.Warn("promotion: could not fetch the manager credentials yet", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(promoteRetry):
		}
	}
	n.log.Info("the promotion was undone: staying a worker")
	return nil
}

// credentials loads the node's identity, or joins with the token when the
// data dir has none.
func (n *Node) credentials(ctx context.Context) error {
	creds, err := join.Load(n.cfg.DataDir)
	if err == nil {
		n.creds = creds
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if n.cfg.Token == "" || n.cfg.ManagerAddr == "" {
		return fmt.Errorf("%s holds no node credentials: join with \"warren cluster join --token TOKEN MANAGER_ADDR\" (print a token with \"warren cluster join-token worker\" on a manager)", n.cfg.DataDir)
	}
	creds, err = join.Join(ctx, n.cfg.ManagerAddr, n.cfg.Token, n.cfg.Description, n.cfg.AdvertiseAddr)
	if err != nil {
		return err
	}
	if err := creds.Save(n.cfg.DataDir); err != nil {
		return err
	}
	n.log.Info("joined the cluster", "node.id", creds.NodeID, "cluster.id", creds.ClusterID)
	n.creds = creds
	return nil
}

// managerPool dials the managers of startAddrs over mutual TLS.
func (n *Node) managerPool(root *ca.CA, kp *ca.KeyPair) (*managerPool, error) {
	file := filepath.Join(n.cfg.DataDir, ManagersFile)
	addrs := startAddrs(n.cfg.ManagerAddr, file, n.creds.ManagerAddrs, n.log)
	dial := func(addr string) (*grpc.ClientConn, error) { return dialManager(addr, root, kp) }
	return newPool(addrs, file, dial, n.log)
}

// startAddrs are the managers a node starts from: the configured one, then
// those saved in file at the last run (learnt from sessions), then those
// learnt at join.
func startAddrs(configured, file string, joined []string, log *slog.Logger) []string {
	return mergeAddrs([]string{configured}, loadManagers(file, log), joined)
}

// connectTimeout bounds one attempt to connect to a manager.
const connectTimeout = 5 * time.Second

// dialManager connects over mutual TLS, trusting only the cluster CA. A
// manager that does not answer (a dead host) must not hold the node for
// gRPC's default 20 s: the pool moves on to the next one.
func dialManager(addr string, root *ca.CA, kp *ca.KeyPair) (*grpc.ClientConn, error) {
	bo := backoff.DefaultConfig
	bo.MaxDelay = connectTimeout
	return join.DialManager(addr, root.Pool(), kp.Certificate, grpc.ConnectParams{Backoff: bo, MinConnectTimeout: connectTimeout})
}
