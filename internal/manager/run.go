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
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/hostinfo"
	"github.com/warren-project/warren/internal/manager/allocator"
	"github.com/warren-project/warren/internal/manager/apiserver"
	"github.com/warren-project/warren/internal/manager/dispatcher"
	"github.com/warren-project/warren/internal/manager/imagestore"
	"github.com/warren-project/warren/internal/manager/nodeca"
	"github.com/warren-project/warren/internal/manager/orchestrator"
	"github.com/warren-project/warren/internal/manager/scheduler"
	"github.com/warren-project/warren/internal/network/ipam"
	"github.com/warren-project/warren/internal/network/overlay"
	"github.com/warren-project/warren/internal/runtime/containerd"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/join"
	"github.com/warren-project/warren/internal/security/seal"
	"github.com/warren-project/warren/internal/security/token"
	"github.com/warren-project/warren/internal/state"
	"github.com/warren-project/warren/internal/worker"
)

// startExecutor connects to containerd, starting one of our own when none
// answers and the binary is installed.
func (m *Manager) startExecutor(ctx context.Context, onStop func(func())) error {
	if m.cfg.Executor != nil {
		m.exec = m.cfg.Executor
		return nil
	}
	e, closeExec, err := containerd.Connect(ctx, m.cfg.ContainerdSocket, m.cfg.DataDir, m.cfg.Logger)
	if err != nil {
		return err
	}
	m.exec = e
	onStop(closeExec)
	return nil
}

// ensureClusterObjects creates the cluster and this node in the state on
// the first start, and refreshes the node's description on later ones.
func (m *Manager) ensureClusterObjects(ctx context.Context) error {
	desc := hostinfo.Describe()
	return m.store.Update(ctx, func(tx state.Tx) error {
		c := tx.GetCluster()
		switch {
		case c == nil:
			c = &api.Cluster{
				Id: m.creds.ClusterID, Meta: &api.Meta{}, Name: m.cfg.ClusterName,
				Spec:          &api.ClusterSpec{TaskHistoryLimit: 5, Network: networkConfig(m.cfg.AddressPlan)},
				CaCert:        m.creds.CA.CertPEM(),
				CaFingerprint: m.creds.CA.Fingerprint(),
				JoinSecrets:   &api.JoinSecrets{Worker: token.NewSecret(), Manager: token.NewSecret()},
			}
			if m.cfg.NodeCertTTL > 0 {
				c.Spec.NodeCertTtl = durationpb.New(m.cfg.NodeCertTTL)
			}
			if err := tx.Create(c); err != nil {
				return err
			}
		case m.cfg.NodeCertTTL > 0 && c.GetSpec().GetNodeCertTtl().AsDuration() != m.cfg.NodeCertTTL:
			// A new --cert-expiry on a restart applies from the next renewal.
			c.Spec.NodeCertTtl = durationpb.New(m.cfg.NodeCertTTL)
			if err := tx.Update(c); err != nil {
				return err
			}
		}
		// --manager-only drains the node once, when it is made: an
		// operator may make it active later, and a restart keeps that.
		avail := api.NodeAvailability_NODE_AVAILABILITY_ACTIVE
		if m.cfg.ManagerOnly {
			avail = api.NodeAvailability_NODE_AVAILABILITY_DRAIN
		}
		n := tx.GetNode(m.creds.NodeID)
		switch {
		case n == nil:
			return tx.Create(&api.Node{
				Id: m.creds.NodeID, Meta: &api.Meta{},
				Spec:        &api.NodeSpec{Role: api.NodeRole_NODE_ROLE_MANAGER, Availability: avail},
				Role:        api.NodeRole_NODE_ROLE_MANAGER,
				Description: desc,
				Status:      &api.NodeStatus{State: api.NodeState_NODE_STATE_UNKNOWN, Message: "starting"},
			})
		case m.joinedNow && n.GetSpec().GetAvailability() != avail:
			n.Spec.Availability = avail
			return tx.Update(n)
		}
		return nil
	})
}

// serve starts the API on the unix socket, on TCP with mutual TLS, on the
// in-process listener of the local agent, and the JSON gateway.
func (m *Manager) serve(ctx context.Context, onStop func(func())) error {
	pool := m.creds.CA.Pool()
	// The gRPC port admits callers without a certificate only for Join
	// (see authorize); the JSON gateway requires one at the handshake.
	m.local = newGRPCServer(nil, m.consistentRead, nil)
	m.remote = newGRPCServer(ca.ServerTLSConfig(pool, m.creds.Cert.Certificate, false), m.consistentRead, m.isManagerNode)
	archives, err := imagestore.New(filepath.Join(m.cfg.DataDir, join.ImagesDir))
	if err != nil {
		return err
	}
	copier := &archiveCopier{m: m, archives: archives}
	// The data key seals registry credentials in the state; it stays in
	// the data dir, out of the replicated state (see package seal).
	sealer, err := seal.LoadOrCreate(dataKeyPath(m.cfg.DataDir))
	if err != nil {
		return err
	}
	m.dispatcher = dispatcher.New(m.store, dispatcher.Config{
		HeartbeatPeriod: m.cfg.HeartbeatPeriod, Logger: m.cfg.Logger, Authorize: authorizeNode,
		Archives: archives, ManagerNodeID: m.creds.NodeID, Sealer: sealer, ManagerAddrs: m.managerAddrs,
		Replicate: copier.copy,
	})
	cctx, stopCopies := context.WithCancel(ctx)
	copied := make(chan struct{})
	go func() { defer close(copied); copier.run(cctx) }()
	onStop(func() { stopCopies(); <-copied })
	control := apiserver.New(apiserver.Config{
		Store: m.store, Images: newClusterImages(m.store, archives, m.exec, m.creds.NodeID, m.cfg.Logger), Raft: m.raftInfo,
		ManagerNodeID: m.creds.NodeID, StartedAt: time.Now(), Logger: m.cfg.Logger,
		ManagerAddrs: m.managerAddrs, CA: m.creds.CA, Sealer: sealer,
		Logs: m.dispatcher, Exec: m.dispatcher, Mesh: m.dispatcher, Managers: m, Leader: m.leader, Backup: m,
	})
	for _, s := range []*grpc.Server{m.local, m.remote} {
		api.RegisterControlServer(s, control)
		api.RegisterDispatcherServer(s, m.dispatcher)
	}
	api.RegisterNodeCAServer(m.remote, nodeca.New(m.store, nodeca.Config{
		CA: m.creds.CA, Logger: m.cfg.Logger, ManagerAddrs: m.managerAddrs,
		DataKey: func() ([]byte, error) { return os.ReadFile(dataKeyPath(m.cfg.DataDir)) },
	}))
	api.RegisterRaftMembershipServer(m.remote, &membership{m: m})

	unixL, err := listenUnix(m.cfg.SocketPath)
	if err != nil {
		return err
	}
	tcpL, err := net.Listen("tcp", m.cfg.ListenAddr)
	if err != nil {
		unixL.Close()
		return fmt.Errorf("listen on %s: %w (is another manager using the port? choose another with --listen-addr)", m.cfg.ListenAddr, err)
	}
	m.tcpAddr = tcpL.Addr()
	m.inproc = newInProcess()
	var wg sync.WaitGroup
	for _, x := range []struct {
		s *grpc.Server
		l net.Listener
	}{{m.local, unixL}, {m.local, m.inproc.l}, {m.remote, tcpL}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serve(x.s, x.l); err != nil {
				m.log.Error("API listener failed", "addr", x.l.Addr(), "err", err)
			}
		}()
	}
	onStop(func() {
		for _, s := range []*grpc.Server{m.local, m.remote} {
			stopGracefully(s, 5*time.Second)
		}
		wg.Wait()
	})
	return m.serveREST(ctx, ca.ServerTLSConfig(pool, m.creds.Cert.Certificate, true), onStop)
}

func (m *Manager) serveREST(ctx context.Context, srvTLS *tls.Config, onStop func(func())) error {
	if m.cfg.RESTAddr == "" {
		return nil
	}
	gw, err := newGateway(ctx, m.cfg.SocketPath)
	if err != nil {
		return err
	}
	l, err := tlsListener(m.cfg.RESTAddr, srvTLS)
	if err != nil {
		return err
	}
	m.restAddr = l.Addr()
	m.rest = &http.Server{Handler: requireAdmin(gw), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.rest.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("REST gateway failed", "err", err)
		}
	}()
	onStop(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.rest.Shutdown(sctx)
		<-done
	})
	return nil
}

func stopGracefully(s *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		s.Stop() // long-lived streams (node sessions) do not end by themselves
	}
}

// component is a part of the control pipeline that runs while this manager leads.
type component interface {
	Run(ctx context.Context) error
	Stop()
}

// startLeading runs the pipeline whenever this manager is the Raft leader,
// and stops it at once when it is not.
func (m *Manager) startLeading(ctx context.Context, onStop func(func())) {
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var stop func()
		if m.raft.IsLeader() {
			stop = m.runPipeline(lctx)
		}
		for {
			select {
			case <-lctx.Done():
				if stop != nil {
					stop()
				}
				return
			case leader := <-m.leaderCh:
				switch {
				case leader && stop == nil:
					m.log.Info("leading: starting the control pipeline")
					stop = m.runPipeline(lctx)
				case !leader && stop != nil:
					m.log.Info("no longer leading: stopping the control pipeline")
					stop()
					stop = nil
				}
			}
		}
	}()
	onStop(func() { cancel(); <-done })
}

func (m *Manager) runPipeline(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	parts := []component{
		orchestrator.New(m.store, orchestrator.Config{Logger: m.cfg.Logger}),
		scheduler.New(m.store, scheduler.Config{Logger: m.cfg.Logger}),
		m.dispatcher,
		newRoleReconciler(m),
	}
	var wg sync.WaitGroup
	for _, c := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("pipeline component stopped", "component", fmt.Sprintf("%T", c), "err", err)
			}
		}()
	}
	return func() {
		cancel()
		for _, c := range parts {
			c.Stop()
		}
		wg.Wait()
	}
}

// startAgent runs this node's agent, which reaches the dispatcher through
// the in-process listener: the same protocol a remote worker speaks.
func (m *Manager) startAgent(ctx context.Context, onStop func(func())) error {
	conn, err := m.inproc.dial()
	if err != nil {
		return err
	}
	nw := m.cfg.Network
	if nw == nil {
		ovl, err := overlay.Start(m.cfg.Overlay, m.creds.NodeID, m.cfg.DataDir, m.advertiseHost(), m.cfg.Logger)
		if err != nil {
			conn.Close()
			return fmt.Errorf("overlay network: %w", err)
		}
		if ovl != nil {
			nw = ovl
			onStop(func() { ovl.Close() })
		}
	}
	agent, err := worker.New(worker.Config{
		NodeID: m.creds.NodeID, Description: hostinfo.Describe(), Addr: m.advertiseHost(),
		Executor: m.exec, DataDir: m.cfg.DataDir, Logger: m.cfg.Logger, Network: nw,
		Dial: m.agentDial(conn), OnRole: m.onRole,
	})
	if err != nil {
		conn.Close()
		return err
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := agent.Run(actx); err != nil && actx.Err() == nil {
			m.log.Error("agent stopped", "err", err)
		}
	}()
	onStop(func() {
		cancel()
		agent.Stop()
		<-done
		conn.Close()
		m.fallback.conn.close()
	})
	return nil
}

func (m *Manager) advertiseHost() string {
	if hosts := m.certHosts(); len(hosts) > 0 {
		return hosts[0]
	}
	return "127.0.0.1"
}

// networkConfig is the address plan a new cluster records.
func networkConfig(p ipam.Plan) *api.NetworkConfig {
	def, _ := ipam.ParsePlan("", 0, "")
	if !p.Subnet.IsValid() {
		p.Subnet = def.Subnet
	}
	if p.NodePrefixLength == 0 {
		p.NodePrefixLength = def.NodePrefixLength
	}
	if !p.VIPPool.IsValid() {
		p.VIPPool = def.VIPPool
	}
	return allocator.NetworkConfig(p)
}
