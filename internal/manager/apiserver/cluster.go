package apiserver

import (
	"context"
	"errors"
	"io"

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
		resp.Cluster = tx.GetCluster()
		resp.Nodes = uint32(len(tx.ListNodes()))
		resp.Services = uint32(len(tx.ListServices()))
		resp.Tasks = uint32(len(tx.ListTasks(state.All)))
	})
	if s.cfg.Raft != nil {
		resp.Raft = s.cfg.Raft()
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

// ImportImage streams an archive into the nodes' image stores.
func (s *Server) ImportImage(stream api.Control_ImportImageServer) error {
	first, err := stream.Recv()
	if err != nil {
		return toStatus(err)
	}
	hdr := first.GetHeader()
	if hdr == nil {
		return toStatus(invalid("an image import must start with its header"))
	}
	pr, pw := io.Pipe()
	go func() {
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				pw.Close()
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := pw.Write(msg.GetChunk()); err != nil {
				return // the reader failed; its error is returned below
			}
		}
	}()
	images, err := s.cfg.Images.ImportImage(stream.Context(), pr, hdr.GetNodeIds())
	pr.CloseWithError(err) // unblocks the receiver if the import stopped early
	if err != nil {
		return toStatus(invalid("cannot import the image archive: %v", err))
	}
	return stream.SendAndClose(&api.ImportImageResponse{Images: images})
}

// ListImages lists images stored on the nodes.
func (s *Server) ListImages(ctx context.Context, _ *api.ListImagesRequest) (*api.ListImagesResponse, error) {
	images, err := s.cfg.Images.ListImages(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &api.ListImagesResponse{Images: images}, nil
}
