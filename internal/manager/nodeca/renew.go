package nodeca

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/state"
)

var (
	// errRemoved marks a renewal by a node no longer in the store.
	errRemoved = errors.New("removed")
	// errRoleChanged marks a renewal that raced a promotion or demotion.
	errRoleChanged = errors.New("role changed")
)

// RenewCertificate signs a new certificate for the caller's own node ID,
// with the role the node has in the state: a promoted worker gets a
// manager's certificate (and the keys every manager holds), a demoted
// manager a worker's. A node removed from the cluster cannot renew:
// removal is how an operator cuts a node off, and its certificate then
// dies at its expiry.
func (s *Server) RenewCertificate(ctx context.Context, req *api.RenewCertificateRequest) (*api.RenewCertificateResponse, error) {
	id, ok := ca.IdentityFromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "renewing needs the node's current certificate from this cluster's CA: a node without one must join with a token")
	}
	if err := s.checkSigner(); err != nil {
		return nil, err
	}
	cluster, err := s.cluster()
	if err != nil {
		return nil, err
	}
	role, err := s.checkRenewer(id, cluster)
	if err != nil {
		s.log.Warn("renewal refused", "node.id", id.NodeID, "node.role", id.Role, "error", err)
		return nil, err
	}
	certRole := ca.RoleWorker
	resp := &api.RenewCertificateResponse{}
	if role == api.NodeRole_NODE_ROLE_MANAGER {
		certRole = ca.RoleManager
		if resp.ManagerSecrets, err = s.managerSecrets(); err != nil {
			return nil, err
		}
	}
	certPEM, err := s.cfg.CA.IssueFromCSR(req.GetCsr(), id.NodeID, certRole, cluster.GetId(), CertTTL(cluster))
	if err != nil {
		return nil, issueStatus(id.NodeID, err)
	}
	expires, err := notAfter(certPEM)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	// The node is checked again inside the write: one removed, promoted
	// or demoted while its certificate was being signed does not get it.
	err = s.store.Update(ctx, func(tx state.Tx) error {
		node := tx.GetNode(id.NodeID)
		if node == nil {
			return errRemoved
		}
		if node.CurrentRole() != role {
			return errRoleChanged
		}
		if node.Status == nil {
			node.Status = &api.NodeStatus{}
		}
		node.Status.CertNotAfter = timestamppb.New(expires)
		return tx.Update(node)
	})
	switch {
	case errors.Is(err, errRemoved):
		return nil, removedStatus(id.NodeID)
	case errors.Is(err, errRoleChanged):
		return nil, status.Errorf(codes.Aborted, "the role of node %s changed while its certificate was signed: renew again", id.NodeID)
	case err != nil:
		return nil, storeStatus("record the renewed certificate of node "+id.NodeID, err)
	}
	if certRole != id.Role {
		s.log.Info("certificate issued for a new role", "node.id", id.NodeID, "node.role", certRole, "was", id.Role)
	}
	s.log.Info("certificate renewed", "node.id", id.NodeID, "node.role", certRole,
		"cert.expires_in", expires.Sub(s.cfg.Now()).Round(time.Second))
	resp.Certificate = certPEM
	return resp, nil
}

// checkRenewer decides whether a verified certificate may be renewed
// here, and returns the role its node has now.
func (s *Server) checkRenewer(id ca.Identity, cluster *api.Cluster) (api.NodeRole, error) {
	if id.ClusterID != cluster.GetId() {
		return 0, status.Errorf(codes.PermissionDenied, "the certificate of %s names cluster %s, but this is cluster %s", id.NodeID, id.ClusterID, cluster.GetId())
	}
	if id.Role == ca.RoleAdmin {
		return 0, status.Error(codes.PermissionDenied, "admin certificates are not renewed here: issue a new admin bundle on a manager (`warren cluster ca issue-admin`)")
	}
	var node *api.Node
	s.store.View(func(tx state.ReadTx) { node = tx.GetNode(id.NodeID) })
	if node == nil {
		return 0, removedStatus(id.NodeID)
	}
	return node.CurrentRole(), nil
}

func removedStatus(nodeID string) error {
	return status.Error(codes.PermissionDenied, fmt.Sprintf("node %s was removed from the cluster: it can no longer renew its certificate; move its data dir away and join again with a token", nodeID))
}
