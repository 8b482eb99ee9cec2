package dns

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	mdns "github.com/miekg/dns"
)

// listenPair binds UDP and TCP on addr. With port 0 both get the same
// free port, as a resolver expects to retry a truncated UDP answer over
// TCP on the port it asked.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	host, port, _ := net.SplitHostPort(addr)
	const tries = 10
	for i := 0; ; i++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, listenError("udp", addr, err)
		}
		tcpAddr := addr
		if port == "0" {
			tcpAddr = net.JoinHostPort(host, strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
		}
		l, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		// A free UDP port may be taken for TCP: with port 0, try another.
		if port != "0" || i == tries-1 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, listenError("tcp", tcpAddr, err)
		}
	}
}

func listenError(network, addr string, err error) error {
	hint := "check that the address is assigned to an interface on this node (the bridge is up)"
	if errors.Is(err, syscall.EADDRINUSE) {
		hint = "another DNS server (dnsmasq, systemd-resolved, a second warren) holds the port: stop it or bind it elsewhere"
	} else if errors.Is(err, syscall.EACCES) {
		hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE"
	}
	return fmt.Errorf("dns: listen on %s %s (%s): %w", network, addr, hint, err)
}

func closeAll(pcs []net.PacketConn, ls []net.Listener) {
	for _, pc := range pcs {
		pc.Close()
	}
	for _, l := range ls {
		l.Close()
	}
}

// localAddr names where srv listens, for logs.
func localAddr(srv *mdns.Server) string {
	if srv.PacketConn != nil {
		return "udp " + srv.PacketConn.LocalAddr().String()
	}
	if srv.Listener != nil {
		return "tcp " + srv.Listener.Addr().String()
	}
	return ""
}
