package wireguard

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// SetPeers makes peers the link's whole peer set and routes each of their
// AllowedIPs prefixes through the link. It changes only what differs:
// new peers are added, peers whose endpoint or AllowedIPs changed are
// updated in place (their sessions go on), peers not in the set are
// removed, and so are their routes. Calling it again with the same set
// does nothing. Every peer gets a persistent keepalive (Keepalive).
//
// A peer's endpoint counts as changed only against what the last call
// set, so a peer that roamed (behind NAT) is not pulled back to its
// registered address by a call that does not change it.
func (l *Link) SetPeers(peers []Peer) error {
	want, err := l.normalize(peers)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dev == nil {
		return ErrClosed
	}
	live, err := l.dev.peers()
	if err != nil {
		return err
	}
	changes := diffPeers(live, want, l.endpoints)
	if len(changes) > 0 {
		if err := l.dev.apply(changes); err != nil {
			return err
		}
		l.logChanges(changes)
	}
	l.endpoints = make(map[wgtypes.Key]netip.AddrPort, len(want))
	var prefixes []netip.Prefix
	for k, p := range want {
		l.endpoints[k] = p.Endpoint
		prefixes = append(prefixes, p.AllowedIPs...)
	}
	return l.syncRoutes(prefixes)
}

// Peers reports the link's peers as it sees them, ordered by public key.
func (l *Link) Peers() ([]PeerStatus, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dev == nil {
		return nil, ErrClosed
	}
	live, err := l.dev.peers()
	if err != nil {
		return nil, err
	}
	out := make([]PeerStatus, 0, len(live))
	for _, p := range live {
		out = append(out, PeerStatus{
			PublicKey:     p.key,
			Endpoint:      p.endpoint,
			AllowedIPs:    sortedPrefixes(p.allowed),
			LastHandshake: p.handshake,
			RxBytes:       p.rx,
			TxBytes:       p.tx,
		})
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return cmp.Compare(a.PublicKey.String(), b.PublicKey.String()) })
	return out, nil
}

// normalize checks peers and returns them by key, with their prefixes
// masked and sorted so they compare equal to what the device reports.
func (l *Link) normalize(peers []Peer) (map[wgtypes.Key]Peer, error) {
	own := l.PublicKey()
	out := make(map[wgtypes.Key]Peer, len(peers))
	owner := make(map[netip.Prefix]wgtypes.Key)
	for _, p := range peers {
		switch _, dup := out[p.PublicKey]; {
		case p.PublicKey == wgtypes.Key{}:
			return nil, fmt.Errorf("wireguard: peer with endpoint %s has no public key", p.Endpoint)
		case p.PublicKey == own:
			return nil, fmt.Errorf("wireguard: peer %s is this node itself", p.PublicKey)
		case dup:
			return nil, fmt.Errorf("wireguard: peer %s listed twice", p.PublicKey)
		}
		allowed := make([]netip.Prefix, 0, len(p.AllowedIPs))
		for _, pfx := range p.AllowedIPs {
			if !pfx.IsValid() {
				return nil, fmt.Errorf("wireguard: peer %s has an invalid allowed IP prefix", p.PublicKey)
			}
			pfx = pfx.Masked()
			if other, taken := owner[pfx]; taken && other != p.PublicKey {
				return nil, fmt.Errorf("wireguard: prefix %s claimed by peers %s and %s", pfx, other, p.PublicKey)
			}
			owner[pfx] = p.PublicKey
			allowed = append(allowed, pfx)
		}
		p.AllowedIPs = slices.Compact(sortedPrefixes(allowed))
		out[p.PublicKey] = p
	}
	return out, nil
}

// diffPeers returns the changes that turn live into want, ordered by key.
// configured holds the endpoints last set, by key (see SetPeers).
func diffPeers(live []peerState, want map[wgtypes.Key]Peer, configured map[wgtypes.Key]netip.AddrPort) []peerChange {
	var changes []peerChange
	seen := make(map[wgtypes.Key]bool, len(live))
	for _, lp := range live {
		seen[lp.key] = true
		wp, ok := want[lp.key]
		if !ok {
			changes = append(changes, peerChange{key: lp.key, remove: true})
			continue
		}
		endpoint, set := configured[lp.key]
		if !set {
			endpoint = lp.endpoint
		}
		if endpoint != wp.Endpoint || lp.keepalive != Keepalive ||
			!slices.Equal(sortedPrefixes(lp.allowed), wp.AllowedIPs) {
			changes = append(changes, addChange(wp))
		}
	}
	for k, wp := range want {
		if !seen[k] {
			changes = append(changes, addChange(wp))
		}
	}
	slices.SortFunc(changes, func(a, b peerChange) int { return cmp.Compare(a.key.String(), b.key.String()) })
	return changes
}

func addChange(p Peer) peerChange {
	return peerChange{key: p.PublicKey, endpoint: p.Endpoint, allowed: p.AllowedIPs, keepalive: Keepalive}
}

func (l *Link) logChanges(changes []peerChange) {
	for _, c := range changes {
		if c.remove {
			l.log.Info("wireguard peer removed", "peer.key", c.key)
		} else {
			l.log.Info("wireguard peer set", "peer.key", c.key, "peer.endpoint", c.endpoint, "peer.allowed_ips", c.allowed)
		}
	}
}

func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Bits(), b.Bits())
	})
	return ps
}
