// Package fakenet is an in-memory overlay for tests that run nodes with a
// fake executor: it registers a key, so managers give the node a block and
// place overlay tasks there, and it records the attachments it gets.
// The real overlay is internal/network/overlay.
package fakenet

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/ids"
	"github.com/warren-project/warren/internal/runtime"
)

// Network is a fake node overlay. It satisfies worker.Network.
type Network struct {
	key string

	mu       sync.Mutex
	attached map[string]string // task ID → address
}

// New returns a fake overlay with a key of its own.
func New() *Network {
	return &Network{key: "fake-" + ids.New(), attached: map[string]string{}}
}

func (n *Network) Registration() *api.NodeNetwork {
	return &api.NodeNetwork{WireguardPublicKey: n.key, WireguardEndpoint: "192.0.2.1:51820"}
}

func (n *Network) Apply(*api.NetworkMap) {}

func (n *Network) Attach(_ context.Context, t *api.Task) (*runtime.NetworkAttachment, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, a := range n.attached {
		if a == t.GetAddress() && id != t.GetId() {
			return nil, fmt.Errorf("address %s of task %s is still held by task %s", a, t.GetId(), id)
		}
	}
	n.attached[t.GetId()] = t.GetAddress()
	return &runtime.NetworkAttachment{NetNSPath: "/fake/netns/" + t.GetId(), HostName: t.GetId()}, nil
}

func (n *Network) Detach(id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.attached, id)
	return nil
}

func (n *Network) Attached() ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for id := range n.attached {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}

func (n *Network) MeshStatus() *api.MeshStatus { return &api.MeshStatus{} }
