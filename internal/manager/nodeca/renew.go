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

// errRemoved marks a renewal by a node no longer in the store.
var errRemoved = errors.New("removed")

// RenewCertificate signs a new certificate for the caller's own node ID and
// role, as its current (verified) certificate names them. A node removed
// from the cluster cannot renew: removal is how an operator cuts a node off,
// and its certificate then dies at its expiry.
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
	if err := s.checkRenewer(id, cluster); err != nil {
		s.log.Warn("renewal refused", "node.id", id.NodeID, "node.role", id.Role, "error", err)
		return nil, err
	}
	certPEM, err := s.cfg.CA.IssueFromCSR(req.GetCsr(), id.NodeID, id.Role, cluster.GetId(), certTTL(cluster))
	if err != nil {
		return nil, issueStatus(id.NodeID, err)
	}
	expires, err := notAfter(certPEM)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	// The node is checked again inside the write: one removed while its
	// certificate was being signed does not get it.
	err = s.store.Update(ctx, func(tx state.Tx) error {
		node := tx.GetNode(id.NodeID)
		if node == nil {
			return errRemoved
		}
		if node.Status == nil {
			node.Status = &api.NodeStatus{}
		}
		node.Status.CertNotAfter = timestamppb.New(expires)
		return tx.Update(node)
	})
	if errors.Is(err, errRemoved) {
		return nil, removedStatus(id.NodeID)
	}
	if err != nil {
		return nil, storeStatus("record the renewed certificate of node "+id.NodeID, err)
	}
	s.log.Info("certificate renewed", "node.id", id.NodeID, "node.role", id.Role,
		"cert.expires_in", expires.Sub(s.cfg.Now()).Round(time.Second))
	return &api.RenewCertificateResponse{Certificate: certPEM}, nil
}

// checkRenewer decides whether a verified certificate may be renewed here.
func (s *Server) checkRenewer(id ca.Identity, cluster *api.Cluster) error {
	if id.ClusterID != cluster.GetId() {
		return status.Errorf(codes.PermissionDenied, "the certificate of %s names cluster %s, but this is cluster %s", id.NodeID, id.ClusterID, cluster.GetId())
	}
	if id.Role == ca.RoleAdmin {
		return status.Error(codes.PermissionDenied, "admin certificates are not renewed here: issue a new admin bundle on a manager (`warren cluster ca issue-admin`)")
	}
	var exists bool
	s.store.View(func(tx state.ReadTx) { exists = tx.GetNode(id.NodeID) != nil })
	if !exists {
		return removedStatus(id.NodeID)
	}
	return nil
}

func removedStatus(nodeID string) error {
	return status.Error(codes.PermissionDenied, fmt.Sprintf("node %s was removed from the cluster: it can no longer renew its certificate; move its data dir away and join again with a token", nodeID))
}
