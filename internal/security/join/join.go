// Package join is the node side of admission: joining a cluster with a
// token, keeping the resulting credentials in the data dir, and renewing the
// node certificate before it expires.
//
// A joining node trusts no CA up front. The token pins the cluster CA by its
// hash; the node checks the chain the manager presents against that pin
// during the TLS handshake, before the token (a secret) is sent. Its private
// key is generated here and never leaves the node: the manager sees a CSR.
package join

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/token"
)

// DefaultTimeout bounds a Join whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// Kinds of Join failure, for errors.Is; the error's text is the whole story.
var (
	// ErrUnreachable: no TLS connection to the manager could be made.
	ErrUnreachable = errors.New("manager unreachable")
	// ErrWrongCA: the manager is not of the cluster the token names; the
	// token was not sent.
	ErrWrongCA = errors.New("refusing to join: the manager's CA is not the one the token pins")
	// ErrRefused: the manager refused the token or the request.
	ErrRefused = errors.New("the manager refused the join")
)

// joinError carries a kind for errors.Is and a message for people.
type joinError struct {
	kind error
	msg  string
}

func (e *joinError) Error() string { return e.msg }
func (e *joinError) Unwrap() error { return e.kind }

// Join asks the manager at managerAddr to admit this node with the join
// token tokenString, and returns the node's new credentials (not yet saved:
// see Credentials.Save). desc and advertiseAddr are recorded on the node;
// an empty advertiseAddr lets the manager use the address it sees.
func Join(ctx context.Context, managerAddr, tokenString string, desc *api.NodeDescription, advertiseAddr string) (*Credentials, error) {
	tok, err := token.Parse(tokenString)
	if err != nil {
		return nil, err
	}
	key, err := ca.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate the node key: %w", err)
	}
	csr, err := ca.NewCSR(key, "warren-node")
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	d := newPinnedDialer(managerAddr, tok)
	conn, err := d.client()
	if err != nil {
		return nil, fmt.Errorf("join via %s: %w", managerAddr, err)
	}
	defer conn.Close()
	resp, err := api.NewNodeCAClient(conn).Join(ctx, &api.JoinRequest{
		Token: tok.String(), Csr: csr, Description: desc, AdvertiseAddr: advertiseAddr,
	}, grpc.WaitForReady(false))
	if err != nil {
		return nil, d.explain(err)
	}
	creds, err := credentialsFrom(resp, tok, key)
	if err != nil {
		return nil, fmt.Errorf("the manager at %s answered the join with unusable credentials: %w", managerAddr, err)
	}
	return creds, nil
}

// credentialsFrom checks a JoinResponse before the node believes it: the CA
// is the pinned one, the certificate chains to it, names the node and role
// the response says, and is for this node's own key.
func credentialsFrom(resp *api.JoinResponse, tok token.Token, key *ecdsa.PrivateKey) (*Credentials, error) {
	root, err := ca.ParseCertPEM(resp.GetCaCertificate())
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if err := tok.CheckCA(root); err != nil {
		return nil, &joinError{ErrWrongCA, err.Error()}
	}
	leaf, err := ca.ParseCertPEM(resp.GetCertificate())
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("node certificate does not verify against the cluster CA: %w", err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return nil, errors.New("node certificate is not for the key this node sent")
	}
	id, err := ca.IdentityFromCert(leaf)
	if err != nil {
		return nil, err
	}
	if id.NodeID != resp.GetNodeId() || id.ClusterID != resp.GetClusterId() || id.Role != certRole(tok) {
		return nil, fmt.Errorf("node certificate names %s/%s/%s, the response %s/%s/%s",
			id.NodeID, id.Role, id.ClusterID, resp.GetNodeId(), certRole(tok), resp.GetClusterId())
	}
	keyPEM, err := ca.EncodeKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return &Credentials{
		NodeID:         id.NodeID,
		ClusterID:      id.ClusterID,
		Role:           id.Role,
		CertPEM:        resp.GetCertificate(),
		KeyPEM:         keyPEM,
		CAPEM:          resp.GetCaCertificate(),
		ManagerAddrs:   resp.GetManagerAddrs(),
		ManagerSecrets: resp.GetManagerSecrets(),
	}, nil
}

// certRole is the certificate role a token asks for.
func certRole(tok token.Token) string {
	if tok.Role == token.RoleManager {
		return ca.RoleManager
	}
	return ca.RoleWorker
}
