package clienttest

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/token"
)

// ClusterID is the cluster ID of the fake, in its certificates too.
const ClusterID = "fakecluster0000000000000"

// ConflictNodeUpdates makes the next n UpdateNode calls fail with
// FailedPrecondition, as if the node changed since the caller read it.
func (f *Fake) ConflictNodeUpdates(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodeUpdateConflicts = n
}

// SetNodeStatus replaces the status of the node with this hostname or ID.
func (f *Fake) SetNodeStatus(ref string, st *api.NodeStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.findNode(ref)
	if err != nil {
		return err
	}
	f.nodes[i].Status = proto.Clone(st).(*api.NodeStatus)
	f.nodes[i].Meta.Version = f.bump()
	return nil
}

// findNode returns the index of a node by ID, hostname or unique ID
// prefix. The caller holds mu.
func (f *Fake) findNode(ref string) (int, error) {
	found := -1
	for i, n := range f.nodes {
		if n.GetId() == ref || n.GetDescription().GetHostname() == ref {
			return i, nil
		}
		if ref != "" && strings.HasPrefix(n.GetId(), ref) {
			if found >= 0 {
				return -1, status.Errorf(codes.InvalidArgument, "node ID prefix %q is ambiguous", ref)
			}
			found = i
		}
	}
	if found < 0 {
		return -1, status.Errorf(codes.NotFound, "node %s not found", ref)
	}
	return found, nil
}

// UpdateNode sets availability and labels as the real server does: a stale
// node_version or a role change is refused.
func (f *Fake) UpdateNode(_ context.Context, req *api.UpdateNodeRequest) (*api.UpdateNodeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nodeUpdateConflicts > 0 {
		f.nodeUpdateConflicts--
		f.bump()
		return nil, status.Error(codes.FailedPrecondition, "node changed since it was read: read it again and retry")
	}
	i, err := f.findNode(req.GetNode())
	if err != nil {
		return nil, err
	}
	n := f.nodes[i]
	if v := req.GetNodeVersion(); v != 0 && v != n.GetMeta().GetVersion() {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s is at version %d, not %d", req.GetNode(), n.GetMeta().GetVersion(), v)
	}
	sp := req.GetSpec()
	if r := sp.GetRole(); r == api.NodeRole_NODE_ROLE_WORKER && n.IsManager() && f.managers() == 1 {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s is the only manager: promote another node first", req.GetNode())
	}
	for k := range sp.GetLabels() {
		if k == "" || strings.Contains(k, "=") {
			return nil, status.Errorf(codes.InvalidArgument, "invalid node label key %q", k)
		}
	}
	// The fake's leader carries a role change out at once.
	if r := sp.GetRole(); r != api.NodeRole_NODE_ROLE_UNSPECIFIED {
		n.Spec.Role, n.Role = r, r
	}
	n.Spec.Availability, n.Spec.Labels = sp.GetAvailability(), sp.GetLabels()
	n.Meta.Version, n.Meta.UpdatedAt = f.bump(), f.now()
	return &api.UpdateNodeResponse{Node: proto.Clone(n).(*api.Node)}, nil
}

// managers counts the nodes that are managers. The caller holds mu.
func (f *Fake) managers() int {
	c := 0
	for _, n := range f.nodes {
		if n.IsManager() {
			c++
		}
	}
	return c
}

// RemoveNode refuses managers, and ready nodes unless forced.
func (f *Fake) RemoveNode(_ context.Context, req *api.RemoveNodeRequest) (*api.RemoveNodeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.findNode(req.GetNode())
	if err != nil {
		return nil, err
	}
	n := f.nodes[i]
	switch {
	case n.IsManager():
		return nil, status.Errorf(codes.FailedPrecondition, "node %s is a manager: demote it first", req.GetNode())
	case n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY && !req.GetForce():
		return nil, status.Errorf(codes.FailedPrecondition, "node %s is up and running tasks: drain it and stop warren there first, or use --force", req.GetNode())
	}
	f.nodes = append(f.nodes[:i:i], f.nodes[i+1:]...)
	f.bump()
	return &api.RemoveNodeResponse{}, nil
}

// CA returns the fake's cluster CA, made on first use. Tokens pin it and
// admin certificates chain to it.
func (f *Fake) CA() *ca.CA {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clusterCA()
}

// clusterCA makes the CA on first use. The caller holds mu.
func (f *Fake) clusterCA() *ca.CA {
	if f.ca == nil {
		root, err := ca.Generate("fake", 0)
		if err != nil {
			panic(fmt.Sprintf("clienttest: generate a CA: %v", err))
		}
		f.ca = root
	}
	return f.ca
}

// JoinSecret returns the current join secret of role ("" before the first
// GetJoinToken of that role).
func (f *Fake) JoinSecret(role api.NodeRole) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.joinSecrets[role]
}

// GetJoinToken returns a real token pinning the fake CA; the manager
// address is the first node's address on port 2377.
func (f *Fake) GetJoinToken(_ context.Context, req *api.GetJoinTokenRequest) (*api.GetJoinTokenResponse, error) {
	letter := map[api.NodeRole]string{api.NodeRole_NODE_ROLE_WORKER: token.RoleWorker, api.NodeRole_NODE_ROLE_MANAGER: token.RoleManager}[req.GetRole()]
	if letter == "" {
		return nil, status.Errorf(codes.InvalidArgument, "invalid join token role %v: use worker or manager", req.GetRole())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.joinSecrets[req.GetRole()] == "" || req.GetRotate() {
		f.joinSecrets[req.GetRole()] = token.NewSecret()
		f.bump()
	}
	tok := token.New(letter, f.clusterCA().Cert(), f.joinSecrets[req.GetRole()])
	return &api.GetJoinTokenResponse{Token: tok.String(), ManagerAddrs: []string{f.nodes[0].GetStatus().GetAddr() + ":2377"}}, nil
}

// IssueAdminCertificate signs the CSR with the fake CA, as the real server
// does: role admin, a fresh admin ID, the requested lifetime.
func (f *Fake) IssueAdminCertificate(_ context.Context, req *api.IssueAdminCertificateRequest) (*api.IssueAdminCertificateResponse, error) {
	f.mu.Lock()
	root := f.clusterCA()
	f.mu.Unlock()
	certPEM, err := root.IssueFromCSR(req.GetCsr(), ca.NewAdminID(), ca.RoleAdmin, ClusterID, req.GetTtl().AsDuration())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &api.IssueAdminCertificateResponse{Certificate: certPEM, CaCertificate: root.CertPEM()}, nil
}
