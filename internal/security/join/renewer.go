package join

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
)

// RenewerConfig configures a Renewer.
type RenewerConfig struct {
	// KeyPair is the node's live certificate; renewals are swapped into it.
	KeyPair *ca.KeyPair
	// DataDir is where the renewed pair is saved (certs/node.*); empty
	// keeps it in memory only.
	DataDir string
	// Client returns a NodeCA client that presents KeyPair's certificate.
	Client  func(ctx context.Context) (api.NodeCAClient, error)
	Logger  *slog.Logger
	Now     func() time.Time
	OnRenew func(notAfter time.Time)
	// RetryMin and RetryMax bound the back-off after a failed renewal:
	// 1 s doubling to 1 min by default.
	RetryMin, RetryMax time.Duration
	// CallTimeout bounds one RenewCertificate call (30 s by default).
	CallTimeout time.Duration
}

// Renewer renews a node's certificate before it expires. It sleeps on a
// timer until ca.RenewAt of the current certificate, renews, and starts
// over; connections already open keep the old certificate, new handshakes
// get the new one.
type Renewer struct {
	cfg  RenewerConfig
	log  *slog.Logger
	mu   sync.Mutex // one renewal at a time
	stop chan struct{}
	once sync.Once
}

// NewRenewer returns a Renewer; Run starts it.
func NewRenewer(cfg RenewerConfig) *Renewer {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = time.Minute
	}
	cfg.RetryMax = max(cfg.RetryMax, cfg.RetryMin)
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	return &Renewer{cfg: cfg, log: cfg.Logger.With("module", "renewer"), stop: make(chan struct{})}
}

// Run renews until ctx ends or Stop is called. A failed renewal is retried;
// Run itself returns only nil.
func (r *Renewer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	failures := 0
	for {
		wait := r.nextDelay(failures)
		if !sleep(ctx, wait) {
			return nil
		}
		err := r.RenewNow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			failures = 0
			continue
		}
		failures++
		r.logFailure(err, failures)
	}
}

// Stop ends Run. It may be called more than once.
func (r *Renewer) Stop() { r.once.Do(func() { close(r.stop) }) }

// nextDelay is how long to wait before the next attempt: until the renewal
// point after a success, else a back-off doubling from RetryMin to RetryMax
// but never past the certificate's expiry minus a margin, so a node keeps
// trying hard while its certificate can still be renewed.
func (r *Renewer) nextDelay(failures int) time.Duration {
	leaf := r.cfg.KeyPair.Leaf()
	if leaf == nil {
		return r.cfg.RetryMax // nothing to renew; RenewNow says so
	}
	now := r.cfg.Now()
	if failures == 0 {
		return max(ca.RenewAt(leaf.NotBefore, leaf.NotAfter).Sub(now), 0)
	}
	backoff := r.cfg.RetryMin
	for i := 1; i < failures && backoff < r.cfg.RetryMax; i++ {
		backoff *= 2
	}
	backoff = min(backoff, r.cfg.RetryMax)
	latest := leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore) / 10)
	if left := latest.Sub(now); left < backoff {
		backoff = max(left, r.cfg.RetryMin)
	}
	return backoff
}

func (r *Renewer) logFailure(err error, failures int) {
	notAfter := r.cfg.KeyPair.NotAfter()
	next := r.nextDelay(failures)
	if r.cfg.Now().After(notAfter) {
		r.log.Error("certificate expired and renewal failed: the node must join again with a token unless a manager renews it",
			"cert.not_after", notAfter, "error", err, "retry_in", next)
		return
	}
	r.log.Warn("certificate renewal failed", "cert.not_after", notAfter, "attempt", failures, "retry_in", next, "error", err)
}

// sleep waits d on a timer; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// RenewNow renews the certificate at once: a new key, a CSR, the
// RenewCertificate call, the files saved, then the swap into the KeyPair.
// The files are saved before the swap, so what the node uses is always
// what it will find after a restart.
func (r *Renewer) RenewNow(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.cfg.KeyPair.Certificate()
	if cur == nil || cur.Leaf == nil {
		return errors.New("renew: the node has no certificate to renew")
	}
	certPEM, keyPEM, err := r.request(ctx, cur.Leaf.Subject.CommonName)
	if err != nil {
		return err
	}
	if err := checkRenewed(cur.Leaf, certPEM, keyPEM); err != nil {
		return fmt.Errorf("renew: the manager's certificate is unusable: %w", err)
	}
	// Keep the chain the old certificate was served with (a manager sends
	// the CA after its own certificate).
	for _, der := range cur.Certificate[1:] {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if r.cfg.DataDir != "" {
		if err := ca.SaveKeyPair(filepath.Join(r.cfg.DataDir, CertsDir), KeyPairName, certPEM, keyPEM); err != nil {
			return fmt.Errorf("renew: save: %w", err)
		}
	}
	if err := r.cfg.KeyPair.Replace(certPEM, keyPEM); err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	notAfter := r.cfg.KeyPair.NotAfter()
	r.log.Info("certificate renewed", "node.id", cur.Leaf.Subject.CommonName, "cert.not_after", notAfter)
	if r.cfg.OnRenew != nil {
		r.cfg.OnRenew(notAfter)
	}
	return nil
}

// request makes a key and asks a manager to certify it.
func (r *Renewer) request(ctx context.Context, nodeID string) (certPEM, keyPEM []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	client, err := r.cfg.Client(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("renew: connect to a manager: %w", err)
	}
	resp, keyPEM, err := requestCert(ctx, client, nodeID)
	if err != nil {
		return nil, nil, fmt.Errorf("renew: %w", err)
	}
	return resp.GetCertificate(), keyPEM, nil
}

// requestCert makes a new key for node nodeID and asks client to certify
// it; the certificate has the role the cluster gives the node now.
func requestCert(ctx context.Context, client api.NodeCAClient, nodeID string) (*api.RenewCertificateResponse, []byte, error) {
	key, err := ca.GenerateKey()
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	csr, err := ca.NewCSR(key, nodeID)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := ca.EncodeKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	resp, err := client.RenewCertificate(ctx, &api.RenewCertificateRequest{Csr: csr})
	if err != nil {
		return nil, nil, err
	}
	return resp, keyPEM, nil
}

// checkRenewed makes sure a renewal is for the new key and names the same
// node, role and cluster as the certificate it replaces.
func checkRenewed(old *x509.Certificate, certPEM, keyPEM []byte) error {
	kp, err := ca.NewKeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	was, err := ca.IdentityFromCert(old)
	if err != nil {
		return err
	}
	now, err := ca.IdentityFromCert(kp.Leaf())
	if err != nil {
		return err
	}
	if now.NodeID == was.NodeID && now.ClusterID == was.ClusterID && now.Role != was.Role {
		return fmt.Errorf("%w to %s: it switches role instead", ErrRoleChanged, now.Role)
	}
	if now != was {
		return fmt.Errorf("it names %s (%s, cluster %s), not %s (%s, cluster %s)",
			now.NodeID, now.Role, now.ClusterID, was.NodeID, was.Role, was.ClusterID)
	}
	return nil
}
