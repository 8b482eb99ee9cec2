package clienttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
)

// AddNode adds a ready, active node and returns a copy of it.
func (f *Fake) AddNode(hostname string, role api.NodeRole) *api.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := &api.Node{
		Id:          f.newID("node"),
		Meta:        f.meta(f.bump()),
		Spec:        &api.NodeSpec{Role: role},
		Role:        role,
		Description: &api.NodeDescription{Hostname: hostname, Platform: &api.Platform{Architecture: "amd64", Os: "linux"}},
		Status:      &api.NodeStatus{State: api.NodeState_NODE_STATE_READY, Addr: fmt.Sprintf("10.0.0.%d", len(f.nodes)+1)},
	}
	f.nodes = append(f.nodes, n)
	return proto.Clone(n).(*api.Node)
}

// Nodes returns copies of the nodes, in the order they were added.
func (f *Fake) Nodes() []*api.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*api.Node, len(f.nodes))
	for i, n := range f.nodes {
		out[i] = proto.Clone(n).(*api.Node)
	}
	return out
}

// ListNodes returns every node.
func (f *Fake) ListNodes(context.Context, *api.ListNodesRequest) (*api.ListNodesResponse, error) {
	return &api.ListNodesResponse{Nodes: f.Nodes()}, nil
}

// GetNode finds a node by ID, unique ID prefix or hostname.
func (f *Fake) GetNode(_ context.Context, req *api.GetNodeRequest) (*api.GetNodeResponse, error) {
	for _, n := range f.Nodes() {
		if n.GetId() == req.GetNode() || n.GetDescription().GetHostname() == req.GetNode() ||
			(req.GetNode() != "" && strings.HasPrefix(n.GetId(), req.GetNode())) {
			return &api.GetNodeResponse{Node: n}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "node %s not found", req.GetNode())
}

// GetClusterInfo describes the cluster as node-1 sees it: node-1 leads,
// and every manager node is a Raft voter (API on port 2377, Raft on
// 2379), reachable unless SetManagerUnreachable said otherwise.
func (f *Fake) GetClusterInfo(context.Context, *api.GetClusterInfoRequest) (*api.GetClusterInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mgr := f.nodes[0]
	raft := &api.RaftInfo{
		State: "Leader", Term: 2, CommitIndex: f.index, AppliedIndex: f.index, LeaderId: mgr.GetId(), LeaderAddr: mgr.GetStatus().GetAddr() + ":2379",
	}
	now := time.Now()
	for _, n := range f.nodes {
		if !n.IsManager() {
			continue
		}
		s := &api.RaftServer{
			Id: n.GetId(), Addr: n.GetStatus().GetAddr() + ":2379", ApiAddr: n.GetStatus().GetAddr() + ":2377", Suffrage: "Voter",
			Leader: n == mgr, Reachable: true, LastContact: timestamppb.New(now),
		}
		if last, ok := f.unreachable[n.GetId()]; ok {
			s.Reachable, s.LastContact = false, timestamppb.New(last)
		}
		raft.Servers = append(raft.Servers, s)
	}
	return &api.GetClusterInfoResponse{
		Cluster: &api.Cluster{Id: ClusterID, Name: "warren", CaFingerprint: "sha256:0123456789abcdef"},
		Raft:    raft,
		Nodes:   uint32(len(f.nodes)), Services: uint32(len(f.services)), Tasks: uint32(len(f.tasks)),
		ManagerNodeId: mgr.GetId(),
		ManagerAddrs:  append([]string(nil), f.managerAddrs...),
	}, nil
}

// SetManagerAddrs sets the managers' API addresses (host:port) that
// GetClusterInfo names, for clients to fail over to.
func (f *Fake) SetManagerAddrs(addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.managerAddrs = append([]string(nil), addrs...)
}

// SetManagerUnreachable makes GetClusterInfo report the manager with this
// hostname unreachable, last heard from at lastContact.
func (f *Fake) SetManagerUnreachable(hostname string, lastContact time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.nodes {
		if n.GetDescription().GetHostname() == hostname {
			if f.unreachable == nil {
				f.unreachable = map[string]time.Time{}
			}
			f.unreachable[n.GetId()] = lastContact
			return nil
		}
	}
	return fmt.Errorf("no node %s", hostname)
}

// SetVersion sets what GetVersion answers.
func (f *Fake) SetVersion(v *api.GetVersionResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version = v
}

// GetVersion answers the fake's version.
func (f *Fake) GetVersion(context.Context, *api.GetVersionRequest) (*api.GetVersionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return proto.Clone(f.version).(*api.GetVersionResponse), nil
}

// ImportImage reads the whole stream and stores one image named
// "docker.io/library/imported:N" whose digest is the archive's sha256.
func (f *Fake) ImportImage(stream grpc.ClientStreamingServer[api.ImportImageRequest, api.ImportImageResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetHeader() == nil {
		return status.Error(codes.InvalidArgument, "the first message must be a header")
	}
	h, size := sha256.New(), int64(0)
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		h.Write(msg.GetChunk())
		size += int64(len(msg.GetChunk()))
	}
	f.mu.Lock()
	nodes := first.GetHeader().GetNodeIds()
	if len(nodes) == 0 {
		for _, n := range f.nodes {
			nodes = append(nodes, n.GetId())
		}
	}
	img := &api.Image{Ref: "docker.io/library/imported:latest", Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: size, NodeIds: nodes, CreatedAt: f.now()}
	f.images = append(f.images, img)
	f.bump()
	f.mu.Unlock()
	return stream.SendAndClose(&api.ImportImageResponse{Images: []*api.Image{proto.Clone(img).(*api.Image)}})
}

// ListImages returns the imported images.
func (f *Fake) ListImages(context.Context, *api.ListImagesRequest) (*api.ListImagesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &api.ListImagesResponse{}
	for _, img := range f.images {
		resp.Images = append(resp.Images, proto.Clone(img).(*api.Image))
	}
	return resp, nil
}
