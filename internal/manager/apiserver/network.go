package apiserver

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/dispatcher"
	"github.com/warren-project/warren/internal/state"
)

// MeshSource has the nodes' last reports of their WireGuard peers: the
// dispatcher, which keeps them in memory.
type MeshSource interface {
	MeshStatus(nodeID string) (*api.MeshStatus, *timestamppb.Timestamp, bool)
}

// InspectNetwork shows the overlay: the address plan, every node's block
// and endpoint with its own view of its peers, and the services' VIPs,
// published ports and backends as nodes get them.
func (s *Server) InspectNetwork(_ context.Context, _ *api.InspectNetworkRequest) (*api.InspectNetworkResponse, error) {
	resp := &api.InspectNetworkResponse{}
	var m *api.NetworkMap
	s.cfg.Store.View(func(tx state.ReadTx) {
		m = dispatcher.BuildNetworkMap(tx)
		for _, n := range tx.ListNodes() {
			nn := &api.NetworkNode{
				NodeId: n.GetId(), Hostname: n.GetDescription().GetHostname(), State: n.GetStatus().GetState(),
				Block: n.GetNetwork().GetBlock(), WireguardPublicKey: n.GetNetwork().GetWireguardPublicKey(),
				WireguardEndpoint: n.GetNetwork().GetWireguardEndpoint(),
			}
			if s.cfg.Mesh != nil {
				if st, at, ok := s.cfg.Mesh.MeshStatus(n.GetId()); ok {
					nn.Peers, nn.Error, nn.ReportedAt = st.GetPeers(), st.GetError(), at
				}
			}
			resp.Nodes = append(resp.Nodes, nn)
		}
	})
	resp.Config, resp.Services = m.GetConfig(), m.GetServices()
	return resp, nil
}
