package apiserver

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/token"
	"github.com/warren-project/warren/internal/state"
)

// GetJoinToken returns the join token of a role, making its secret on first
// use or when asked to rotate. Rotation changes only what new nodes must
// present: nodes already in keep their certificates.
//
// Codes: InvalidArgument (a role other than worker or manager),
// FailedPrecondition (the cluster object does not exist yet).
func (s *Server) GetJoinToken(ctx context.Context, req *api.GetJoinTokenRequest) (*api.GetJoinTokenResponse, error) {
	role := req.GetRole()
	letter, ok := tokenRoles[role]
	if !ok {
		return nil, toStatus(invalid("invalid join token role %v: use worker or manager", role))
	}
	// Made outside the write: the callback may run again after a conflict,
	// and then it must store the same secret.
	fresh := token.NewSecret()
	var secret string
	var caPEM []byte
	var rotated bool
	err := s.cfg.Store.Update(ctx, func(tx state.Tx) error {
		c := tx.GetCluster()
		if c == nil {
			return precondition("the cluster is not initialised yet: try again once the manager is ready")
		}
		caPEM, rotated = c.GetCaCert(), false
		secrets := c.GetJoinSecrets()
		if secret = secretOf(secrets, role); secret != "" && !req.GetRotate() {
			return nil // nothing to write
		}
		if secrets == nil {
			secrets = &api.JoinSecrets{}
		}
		setSecret(secrets, role, fresh)
		c.JoinSecrets, secret, rotated = secrets, fresh, true
		return tx.Update(c)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	caCert, err := ca.ParseCertPEM(caPEM)
	if err != nil {
		return nil, toStatus(fmt.Errorf("the cluster's CA certificate is unreadable: %w", err))
	}
	if rotated {
		s.log.Info("join token secret set", "role", enumWord(role), "rotate", req.GetRotate())
	}
	resp := &api.GetJoinTokenResponse{Token: token.New(letter, caCert, secret).String()}
	if s.cfg.ManagerAddrs != nil {
		resp.ManagerAddrs = s.cfg.ManagerAddrs()
	}
	return resp, nil
}

var tokenRoles = map[api.NodeRole]string{
	api.NodeRole_NODE_ROLE_WORKER:  token.RoleWorker,
	api.NodeRole_NODE_ROLE_MANAGER: token.RoleManager,
}

func secretOf(s *api.JoinSecrets, role api.NodeRole) string {
	if role == api.NodeRole_NODE_ROLE_MANAGER {
		return s.GetManager()
	}
	return s.GetWorker()
}

func setSecret(s *api.JoinSecrets, role api.NodeRole, secret string) {
	if role == api.NodeRole_NODE_ROLE_MANAGER {
		s.Manager = secret
	} else {
		s.Worker = secret
	}
}

// redactCluster returns a copy of c without the join secrets, for every
// answer but GetJoinToken: whoever reads a secret can add nodes.
func redactCluster(c *api.Cluster) *api.Cluster {
	if c == nil {
		return nil
	}
	c = proto.Clone(c).(*api.Cluster)
	c.JoinSecrets = nil
	return c
}

// IssueAdminCertificate signs an admin client certificate for the caller's
// CSR; the private key never leaves the caller. The identity is a fresh
// admin ID, whatever the CSR asks for.
//
// Codes: InvalidArgument (no or bad CSR, a TTL under ca.MinCertTTL),
// FailedPrecondition (this manager holds no CA key, or no cluster yet).
func (s *Server) IssueAdminCertificate(ctx context.Context, req *api.IssueAdminCertificateRequest) (*api.IssueAdminCertificateResponse, error) {
	if s.cfg.CA == nil {
		return nil, toStatus(fmt.Errorf("this manager cannot issue certificates: %w", ca.ErrNoSigningKey))
	}
	if len(req.GetCsr()) == 0 {
		return nil, toStatus(invalid("no certificate request (csr) given"))
	}
	ttl := ca.DefaultCertTTL
	if req.GetTtl() != nil {
		ttl = req.GetTtl().AsDuration()
		if ttl < ca.MinCertTTL {
			return nil, toStatus(invalid("certificate lifetime %v is shorter than the minimum %v", ttl, ca.MinCertTTL))
		}
	}
	var clusterID string
	s.cfg.Store.View(func(tx state.ReadTx) { clusterID = tx.GetCluster().GetId() })
	if clusterID == "" {
		return nil, toStatus(precondition("the cluster is not initialised yet: try again once the manager is ready"))
	}
	adminID := ca.NewAdminID()
	certPEM, err := s.cfg.CA.IssueFromCSR(req.GetCsr(), adminID, ca.RoleAdmin, clusterID, ttl)
	if err != nil {
		return nil, toStatus(fmt.Errorf("cannot issue an admin certificate: %w", err))
	}
	log := s.log.With("admin.id", adminID, "ttl", ttl.Round(time.Second).String())
	if caller, ok := ca.IdentityFromContext(ctx); ok {
		log = log.With("caller.id", caller.NodeID, "caller.role", caller.Role)
	}
	log.Info("admin certificate issued")
	return &api.IssueAdminCertificateResponse{Certificate: certPEM, CaCertificate: s.cfg.CA.CertPEM()}, nil
}
