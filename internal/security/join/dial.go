package join

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/token"
)

// pinnedDialer connects to one manager, trusting only the CA the token
// pins, and remembers why a connection failed so Join can say so in one
// line rather than as a gRPC transport error.
type pinnedDialer struct {
	addr string
	tok  token.Token

	mu        sync.Mutex
	dialErr   error // the last TCP dial failure
	pinErr    error // the first chain the pin refused
	connected bool  // a handshake passed the pin check
}

func newPinnedDialer(addr string, tok token.Token) *pinnedDialer {
	return &pinnedDialer{addr: addr, tok: tok}
}

// client returns a gRPC connection that dials lazily, on the first call.
func (d *pinnedDialer) client() (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+d.addr,
		grpc.WithTransportCredentials(credentials.NewTLS(d.tlsConfig())),
		grpc.WithContextDialer(d.dial))
}

// tlsConfig verifies the server against the token's pin instead of a CA
// pool: the node has no CA yet. InsecureSkipVerify only turns off Go's
// default verification; VerifyConnection does the real check, and a
// handshake it refuses never carries application data, so the token stays
// here. The client presents no certificate.
func (d *pinnedDialer) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, //nolint:gosec // verified against the pin in VerifyConnection
		VerifyConnection:   d.verify,
	}
}

func (d *pinnedDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		d.mu.Lock()
		d.dialErr = err
		d.mu.Unlock()
	}
	return conn, err
}

func (d *pinnedDialer) verify(cs tls.ConnectionState) error {
	err := verifyManagerChain(cs.PeerCertificates, d.tok)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil && d.pinErr == nil {
		d.pinErr = err
	}
	if err == nil {
		d.connected = true
	}
	return err
}

// verifyManagerChain accepts a chain that ends in the pinned CA and whose
// leaf that CA signed for a manager. The role check matters: workers'
// certificates come from the same CA and may serve TLS, but a worker must
// never be handed another node's join token.
func verifyManagerChain(certs []*x509.Certificate, tok token.Token) error {
	if len(certs) == 0 {
		return errors.New("the server presented no certificate")
	}
	leaf, root := certs[0], certs[len(certs)-1]
	if len(certs) == 1 {
		return fmt.Errorf("the server presented only its own certificate (%s), not followed by its cluster CA, so it cannot be checked against the token (a Warren manager sends both)", ca.FingerprintOf(leaf))
	}
	if tok.CheckCA(root) != nil {
		return fmt.Errorf("the server presented CA %s, but the token pins sha256:%x (is this the right manager, and the token from its cluster?)", ca.FingerprintOf(root), tok.CADigest)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range certs[1 : len(certs)-1] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("the server's certificate does not verify against the pinned CA: %v", err)
	}
	id, err := ca.IdentityFromCert(leaf)
	if err != nil {
		return fmt.Errorf("the server's certificate names no Warren node: %v", err)
	}
	if id.Role != ca.RoleManager {
		return fmt.Errorf("the server's certificate is %s's, a %s, not a manager's", id.NodeID, id.Role)
	}
	return nil
}

// explain turns a failed Join call into one line saying what happened.
func (d *pinnedDialer) explain(err error) error {
	d.mu.Lock()
	pinErr, dialErr, connected := d.pinErr, d.dialErr, d.connected
	d.mu.Unlock()
	st := status.Convert(err)
	switch {
	case pinErr != nil:
		return &joinError{ErrWrongCA, fmt.Sprintf("refusing to join: cannot trust the server at %s: %v", d.addr, pinErr)}
	case st.Code() == codes.PermissionDenied, st.Code() == codes.InvalidArgument,
		st.Code() == codes.Unauthenticated, st.Code() == codes.FailedPrecondition:
		return &joinError{ErrRefused, fmt.Sprintf("the manager at %s refused the join: %s", d.addr, st.Message())}
	case st.Code() == codes.Canceled:
		return fmt.Errorf("join via %s: %w", d.addr, context.Canceled)
	case !connected && dialErr != nil:
		return &joinError{ErrUnreachable, fmt.Sprintf("cannot reach the manager at %s: %v", d.addr, dialErr)}
	case !connected && (st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded):
		return &joinError{ErrUnreachable, fmt.Sprintf("cannot reach the manager at %s: %s", d.addr, st.Message())}
	}
	return fmt.Errorf("join via the manager at %s: %s (%s)", d.addr, st.Message(), st.Code())
}
