package client

import (
	"context"
	"slices"

	"google.golang.org/grpc"

	"github.com/warren-project/warren/api"
)

// learn asks the manager that just answered over tcp for the cluster's
// managers, once per client, and adds them to the ones to fail over to. It
// happens after the first successful call rather than when a call fails
// over, because by then the manager given may be the one that is down; it
// costs one GetClusterInfo per client (none when the call was one). A
// manager that will not say (an older one, or a certificate that may not
// ask) leaves the client with the hosts it was given.
func (c *Client) learn(ctx context.Context, h *host, conn *grpc.ClientConn, method string, reply any) {
	if h.ep.network != "tcp" || !c.startLearning() {
		return
	}
	info, ok := reply.(*api.GetClusterInfoResponse)
	if !ok || method != api.Control_GetClusterInfo_FullMethodName {
		info = &api.GetClusterInfoResponse{}
		ctx, cancel := context.WithTimeout(ctx, c.cfg.connectTimeout)
		defer cancel()
		if err := conn.Invoke(ctx, api.Control_GetClusterInfo_FullMethodName, &api.GetClusterInfoRequest{}, info); err != nil {
			c.cfg.logger.Debug("cannot learn the cluster's managers", "host", h.ep.String(), "err", err)
			return
		}
	}
	addrs := mergeAddrs(info.GetManagerAddrs())
	if len(addrs) == 0 {
		return
	}
	c.addLearnt(addrs)
	c.cfg.logger.Debug("managers learnt", "host", h.ep.String(), "managers", addrs)
	if c.cfg.managersFile == "" || slices.Equal(addrs, c.known) {
		return
	}
	if err := saveManagers(c.cfg.managersFile, c.tlsDir, addrs); err != nil {
		c.cfg.logger.Warn("cannot keep the cluster's managers for the next command", "err", err)
	}
}

// startLearning reports whether this caller is the one to learn.
func (c *Client) startLearning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.learned {
		return false
	}
	c.learned = true
	return true
}

// addLearnt replaces the learnt managers with addrs (API addresses,
// host:port), after the given hosts: the list a manager gives is the
// cluster's membership, so managers no longer in it go. A learnt manager
// already known keeps its connection.
func (c *Client) addLearnt(addrs []string) {
	var eps []endpoint
	for _, a := range addrs {
		ep, err := parseHost(a)
		if err != nil || ep.network != "tcp" {
			c.cfg.logger.Debug("ignoring a manager address", "addr", a, "err", err)
			continue
		}
		eps = append(eps, ep)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var hosts, old []*host
	for _, h := range c.hosts {
		if h.learnt {
			old = append(old, h)
		} else {
			hosts = append(hosts, h)
		}
	}
	for _, ep := range eps {
		if slices.ContainsFunc(hosts, func(h *host) bool { return h.ep == ep }) {
			continue
		}
		if i := slices.IndexFunc(old, func(h *host) bool { return h.ep == ep }); i >= 0 {
			hosts = append(hosts, old[i])
			continue
		}
		h, err := c.newHost(ep, true)
		if err != nil {
			c.cfg.logger.Debug("ignoring a manager address", "addr", ep.String(), "err", err)
			continue
		}
		hosts = append(hosts, h)
	}
	c.hosts = hosts
}

// mergeAddrs concatenates lists, keeping each address's first place and
// dropping empty ones.
func mergeAddrs(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, a := range l {
			if a != "" && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}
