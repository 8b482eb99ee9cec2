package join

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/warren-project/warren/internal/security/ca"
)

// DialManager connects to a manager's API at addr over mutual TLS,
// trusting only pool and presenting cert (grpc.NewClient dials lazily);
// connect sets how a manager that does not answer is retried. Keepalive
// pings notice a manager whose host died or was cut off within 15 s
// (managers allow pings every 5 s).
func DialManager(addr string, pool *x509.CertPool, cert func() *tls.Certificate, connect grpc.ConnectParams) (*grpc.ClientConn, error) {
	if addr == "" {
		return nil, errors.New("no manager address known: pass the manager's address")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("manager address %q: %w", addr, err)
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(ca.ClientTLSConfig(pool, cert, host))),
		grpc.WithConnectParams(connect),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		return nil, fmt.Errorf("manager %s: %w", addr, err)
	}
	return conn, nil
}
