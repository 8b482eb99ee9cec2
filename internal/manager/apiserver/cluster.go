package apiserver

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
	"github.com/warren-project/warren/internal/version"
)

// ListNodes lists the cluster's nodes.
func (s *Server) ListNodes(context.Context, *api.ListNodesRequest) (*api.ListNodesResponse, error) {
	resp := &api.ListNodesResponse{}
	s.cfg.Store.View(func(tx state.ReadTx) { resp.Nodes = tx.ListNodes() })
	return resp, nil
}

// GetNode finds a node by ID, hostname or ID prefix.
func (s *Server) GetNode(_ context.Context, req *api.GetNodeRequest) (*api.GetNodeResponse, error) {
	var n *api.Node
	var err error
	s.cfg.Store.View(func(tx state.ReadTx) { n, err = tx.LookupNode(req.GetNode()) })
	if err != nil {
		return nil, toStatus(err)
	}
	return &api.GetNodeResponse{Node: n}, nil
}

// GetClusterInfo describes the cluster and this manager's view of Raft.
func (s *Server) GetClusterInfo(context.Context, *api.GetClusterInfoRequest) (*api.GetClusterInfoResponse, error) {
	resp := &api.GetClusterInfoResponse{ManagerNodeId: s.cfg.ManagerNodeID, StartedAt: timestamppb.New(s.cfg.StartedAt)}
	s.cfg.Store.View(func(tx state.ReadTx) {
		resp.Cluster = redactCluster(tx.GetCluster())
		n := tx.Count()
		resp.Nodes, resp.Services, resp.Tasks = uint32(n.Nodes), uint32(n.Services), uint32(n.Tasks)
	})
	if s.cfg.Raft != nil {
		resp.Raft = s.cfg.Raft()
	}
	if s.cfg.ManagerAddrs != nil {
		resp.ManagerAddrs = s.cfg.ManagerAddrs()
	}
	return resp, nil
}

// GetVersion reports the server's build.
func (s *Server) GetVersion(context.Context, *api.GetVersionRequest) (*api.GetVersionResponse, error) {
	return &api.GetVersionResponse{
		Version: version.Version, GitCommit: version.GitCommit,
		GoVersion: version.GoVersion(), ApiVersion: version.APIVersion,
	}, nil
}
