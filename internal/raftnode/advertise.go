package raftnode

import "net"

// advertised makes the stream report the advertised address as its own, so
// peers are told an address they can dial even when it binds 0.0.0.0.
func advertised(s *tlsStreamLayer, advertise string) *tlsStreamLayer {
	if advertise == "" {
		return s
	}
	if a, err := net.ResolveTCPAddr("tcp", advertise); err == nil {
		s.Listener = addrListener{Listener: s.Listener, addr: a}
	}
	return s
}

type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }
