package manager

import (
	"context"
	"net"
	"slices"
	"time"

	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/state"
)

// renewOwnCertificate reissues the manager's certificate from its own CA
// when its lifetime passes the renewal point. The key pair is swapped in
// place: new handshakes use the new certificate, open connections go on.
func (m *Manager) renewOwnCertificate(ctx context.Context) {
	for {
		leaf := m.creds.Cert.Leaf()
		wait := time.Until(ca.RenewAt(leaf.NotBefore, leaf.NotAfter))
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := issueNodeCert(m.cfg.DataDir, m.creds, m.certHosts()); err != nil {
			m.log.Error("renew the manager certificate; retrying in a minute", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
			continue
		}
		m.log.Info("manager certificate renewed", "not_after", m.creds.Cert.NotAfter())
	}
}

// managerAddrs are the addresses nodes dial to reach the managers: this
// one first, then the others.
func (m *Manager) managerAddrs() []string {
	return appendNew([]string{m.advertiseAPI()}, m.peerAPIAddrs()...)
}

// peerAPIAddrs are the API addresses of the other managers, as the state
// records them.
func (m *Manager) peerAPIAddrs() []string {
	var out []string
	m.store.View(func(tx state.ReadTx) {
		for _, n := range tx.ListNodes() {
			if a := n.GetManagerStatus().GetApiAddr(); a != "" && n.GetId() != m.creds.NodeID && n.IsManager() {
				out = appendNew(out, a)
			}
		}
	})
	return out
}

// appendNew appends the addresses not in list yet.
func appendNew(list []string, addrs ...string) []string {
	for _, a := range addrs {
		if !slices.Contains(list, a) {
			list = append(list, a)
		}
	}
	return list
}

// advertiseAPI is the API address other nodes are told: the advertise
// address, else the listen address, else (for a wildcard listen) this
// host's first non-loopback address.
func (m *Manager) advertiseAPI() string {
	_, port, _ := net.SplitHostPort(m.tcpAddr.String())
	if a := m.cfg.AdvertiseAddr; a != "" {
		if _, _, err := net.SplitHostPort(a); err == nil {
			return a
		}
		return net.JoinHostPort(a, port)
	}
	return net.JoinHostPort(m.advertiseHost(), port)
}

// hostAddr is the first non-loopback IPv4 address of this host.
func hostAddr() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
			return ip.IP.String()
		}
	}
	return ""
}
