package join

import (
	"errors"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/token"
)

func TestJoinThroughStub(t *testing.T) {
	root := newCA(t)
	s := &stubCA{ca: root}
	chain, key := issue(t, root, "m1", ca.RoleManager, true)
	addr := serve(t, s, chain, key)

	creds, err := Join(ctxTimeout(t), addr, workerToken(root), &api.NodeDescription{Hostname: "h"}, "")
	must(t, err)
	if creds.NodeID != "node-1" || creds.ClusterID != testCluster || creds.Role != ca.RoleWorker {
		t.Fatalf("credentials = %s/%s/%s, want node-1/%s/worker", creds.NodeID, creds.ClusterID, creds.Role, testCluster)
	}
	if _, err := creds.KeyPair(); err != nil {
		t.Fatalf("the returned certificate and key do not belong together: %v", err)
	}
}

// TestJoinRefusesTheWrongServer: every one of these servers fails the pin
// check during the handshake, so the token is never sent.
func TestJoinRefusesTheWrongServer(t *testing.T) {
	root, other := newCA(t), newCA(t)
	cases := []struct {
		name  string
		serve *ca.CA // whose stub answers
		chain func() ([]byte, []byte)
		msg   string
	}{
		{"another cluster's manager", other, func() ([]byte, []byte) { return issue(t, other, "m1", ca.RoleManager, true) },
			"but the token pins"},
		{"a manager sending no CA", root, func() ([]byte, []byte) { return issue(t, root, "m1", ca.RoleManager, false) },
			"not followed by its cluster CA"},
		{"a worker of the right cluster", root, func() ([]byte, []byte) { return issue(t, root, "w1", ca.RoleWorker, true) },
			"not a manager's"},
		{"another CA's leaf ending in the pinned CA", root, func() ([]byte, []byte) {
			cert, key := issue(t, other, "m1", ca.RoleManager, false)
			return append(cert, root.CertPEM()...), key
		}, "does not verify against the pinned CA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &stubCA{ca: tc.serve}
			chain, key := tc.chain()
			addr := serve(t, s, chain, key)
			_, err := Join(ctxTimeout(t), addr, workerToken(root), nil, "")
			if !errors.Is(err, ErrWrongCA) || !strings.HasPrefix(err.Error(), "refusing to join") || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Join = %v, want ErrWrongCA saying %q", err, tc.msg)
			}
			t.Log(err)
			if n := s.joinCalls(); n != 0 {
				t.Fatalf("the server received %d Join calls: the token left the node", n)
			}
		})
	}
}

func TestJoinErrors(t *testing.T) {
	root := newCA(t)
	chain, key := issue(t, root, "m1", ca.RoleManager, true)
	refusing := serve(t, &stubCA{ca: root, reply: func(*api.JoinRequest) (*api.JoinResponse, error) {
		return nil, status.Error(codes.PermissionDenied, "the join token is not valid (rotated)")
	}}, chain, key)
	wrongKey := serve(t, &stubCA{ca: root, reply: func(*api.JoinRequest) (*api.JoinResponse, error) {
		cert, _, err := root.Issue("node-1", ca.RoleWorker, testCluster, 0, nil)
		return &api.JoinResponse{NodeId: "node-1", ClusterId: testCluster, Certificate: cert, CaCertificate: root.CertPEM()}, err
	}}, chain, key)
	closed := closedAddr(t)

	cases := []struct {
		name, addr, token string
		kind              error
		msg               string
	}{
		{"malformed token", closed, "SWMTKN-1-xyz", token.ErrInvalid, "should start with"},
		{"unreachable manager", closed, workerToken(root), ErrUnreachable, "cannot reach the manager at " + closed},
		{"token refused", refusing, workerToken(root), ErrRefused, "refused the join: the join token is not valid (rotated)"},
		{"certificate for another key", wrongKey, workerToken(root), nil, "not for the key this node sent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Join(ctxTimeout(t), tc.addr, tc.token, nil, "")
			if err == nil || (tc.kind != nil && !errors.Is(err, tc.kind)) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Join = %v, want %v saying %q", err, tc.kind, tc.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			t.Log(err)
		})
	}
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	must(t, ln.Close())
	return addr
}
