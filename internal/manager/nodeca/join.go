package nodeca

import (
	"context"
	"net"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/ids"
	"github.com/warren-project/warren/internal/security/token"
	"github.com/warren-project/warren/internal/state"
)

// joinedMessage is a new node's status until its first session.
const joinedMessage = "joined, waiting for its first session"

// Join admits a node holding a valid join token: it signs the node's CSR
// under a fresh node ID and records the node in the store.
//
// The certificate is signed before the node is recorded, so a failure at any
// step leaves nothing behind: a certificate nobody received is harmless,
// while a recorded node without one would need cleaning up (and the cleanup
// could fail too).
func (s *Server) Join(ctx context.Context, req *api.JoinRequest) (*api.JoinResponse, error) {
	tok, err := token.Parse(req.GetToken())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	cluster, err := s.admit(tok)
	if err != nil {
		s.log.Warn("join refused", "peer", peerIP(ctx), "error", err)
		return nil, err
	}
	role, certRole := tokenRole(tok)
	var secrets *api.ManagerSecrets
	if role == api.NodeRole_NODE_ROLE_MANAGER {
		if secrets, err = s.managerSecrets(); err != nil {
			return nil, err
		}
	}
	nodeID := ids.New()
	certPEM, err := s.cfg.CA.IssueFromCSR(req.GetCsr(), nodeID, certRole, cluster.GetId(), CertTTL(cluster))
	if err != nil {
		return nil, issueStatus(nodeID, err)
	}
	expires, err := notAfter(certPEM)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	node := newNode(nodeID, role, req, peerIP(ctx), expires)
	if err := s.store.Update(ctx, func(tx state.Tx) error { return tx.Create(node) }); err != nil {
		return nil, storeStatus("record the new node "+nodeID, err)
	}
	s.log.Info("node joined", "node.id", nodeID, "node.role", certRole,
		"node.hostname", req.GetDescription().GetHostname(), "node.addr", node.GetStatus().GetAddr(),
		"cert.expires_in", expires.Sub(s.cfg.Now()).Round(time.Second))
	return &api.JoinResponse{
		NodeId:         nodeID,
		ClusterId:      cluster.GetId(),
		Role:           role,
		Certificate:    certPEM,
		CaCertificate:  s.cfg.CA.CertPEM(),
		ManagerAddrs:   s.cfg.ManagerAddrs(),
		ManagerSecrets: secrets,
	}, nil
}

// managerSecrets are the keys every manager holds: the root key, to sign
// certificates wherever nodes renew, and the data key, to open sealed
// secrets wherever tasks are dispatched.
func (s *Server) managerSecrets() (*api.ManagerSecrets, error) {
	if s.cfg.DataKey == nil {
		return nil, status.Error(codes.FailedPrecondition, "this manager cannot admit managers (no data key)")
	}
	caKey, err := s.cfg.CA.KeyPEM()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	dataKey, err := s.cfg.DataKey()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "read the data key: %v", err)
	}
	return &api.ManagerSecrets{CaKey: caKey, DataKey: dataKey}, nil
}

// admit checks a parsed token against this cluster and returns the cluster.
func (s *Server) admit(tok token.Token) (*api.Cluster, error) {
	if err := s.checkSigner(); err != nil {
		return nil, err
	}
	cluster, err := s.cluster()
	if err != nil {
		return nil, err
	}
	// A token pinning another CA is another cluster's, whatever its secret.
	if tok.CheckCA(s.cfg.CA.Cert()) != nil {
		return nil, status.Error(codes.PermissionDenied, errNotValid)
	}
	if !tok.SecretIs(secretFor(cluster, tok.Role)) {
		return nil, status.Error(codes.PermissionDenied, errNotValid)
	}
	return cluster, nil
}

func newNode(id string, role api.NodeRole, req *api.JoinRequest, peerAddr string, certNotAfter time.Time) *api.Node {
	addr := req.GetAdvertiseAddr()
	if addr == "" {
		addr = peerAddr
	}
	var desc *api.NodeDescription
	if req.GetDescription() != nil {
		desc = proto.Clone(req.GetDescription()).(*api.NodeDescription)
	}
	return &api.Node{
		Id:          id,
		Meta:        &api.Meta{},
		Spec:        &api.NodeSpec{Role: role, Availability: api.NodeAvailability_NODE_AVAILABILITY_ACTIVE},
		Role:        role,
		Description: desc,
		Status: &api.NodeStatus{
			State:        api.NodeState_NODE_STATE_UNKNOWN,
			Message:      joinedMessage,
			Addr:         addr,
			CertNotAfter: timestamppb.New(certNotAfter),
		},
	}
}

// peerIP is the caller's IP address, or "" when the transport has none.
func peerIP(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String()
	}
	return host
}
