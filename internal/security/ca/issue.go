package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Roles, carried in a certificate's OU.
const (
	RoleManager = "manager"
	RoleWorker  = "worker"
	RoleAdmin   = "admin"
)

const (
	// DefaultCertTTL is the lifetime of node and admin certificates; they
	// renew well before it ends (see RenewAt).
	DefaultCertTTL = 90 * 24 * time.Hour
	// MinCertTTL is the shortest lifetime Issue accepts.
	MinCertTTL = time.Minute
)

// ErrInvalid wraps every rejection of the caller's input: an unknown role,
// an empty ID, a bad CSR. The API edge maps it to InvalidArgument.
var ErrInvalid = errors.New("invalid certificate request")

// ValidRole reports whether role is one of the three Warren knows.
func ValidRole(role string) bool {
	return role == RoleManager || role == RoleWorker || role == RoleAdmin
}

// NewAdminID returns a fresh CN for an admin certificate.
func NewAdminID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "admin-" + hex.EncodeToString(b[:])
}

// IssueFromCSR signs a certificate for the key in csrDER. The identity (CN,
// OU, O) comes from the arguments, never from the CSR: the manager decides who
// the requester is. A manager's CSR SANs are kept, so it can be dialled at its
// advertised addresses; other roles' SANs are ignored.
func (c *CA) IssueFromCSR(csrDER []byte, nodeID, role, clusterID string, ttl time.Duration) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: parse CSR: %v", ErrInvalid, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: CSR signature: %v", ErrInvalid, err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, err
	}
	var hosts []string
	if role == RoleManager {
		hosts = slices.Clone(csr.DNSNames)
		for _, ip := range csr.IPAddresses {
			hosts = append(hosts, ip.String())
		}
	}
	return c.issue(csr.PublicKey, nodeID, role, clusterID, ttl, hosts)
}

// Issue generates a key here and signs a certificate for it: for the
// manager's own certificate and for admin bundles, where the key is born on
// the machine that will use it anyway. An admin with an empty nodeID gets
// NewAdminID.
func (c *CA) Issue(nodeID, role, clusterID string, ttl time.Duration, hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := GenerateKey()
	if err != nil {
		return nil, nil, fmt.Errorf("ca: generate key: %w", err)
	}
	certPEM, err = c.issue(&key.PublicKey, nodeID, role, clusterID, ttl, hosts)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = EncodeKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

func (c *CA) issue(pub crypto.PublicKey, nodeID, role, clusterID string, ttl time.Duration, hosts []string) ([]byte, error) {
	if ttl == 0 {
		ttl = DefaultCertTTL
	}
	if ttl < MinCertTTL {
		return nil, fmt.Errorf("%w: ttl %v is shorter than %v", ErrInvalid, ttl, MinCertTTL)
	}
	now := time.Now()
	notAfter := now.Add(ttl)
	// A leaf cannot outlive its root; cap it rather than issue a certificate
	// whose chain fails verification before its own NotAfter.
	if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("ca: root certificate expired at %v; the cluster needs a new CA", c.cert.NotAfter)
	}
	return c.sign(leafSpec{
		pub: pub, nodeID: nodeID, role: role, clusterID: clusterID, hosts: hosts,
		notBefore: now.Add(-clockSkew), notAfter: notAfter,
	})
}

// leafSpec is everything sign needs; tests build one directly to make
// certificates that are already expired.
type leafSpec struct {
	pub                     crypto.PublicKey
	nodeID, role, clusterID string
	hosts                   []string
	notBefore, notAfter     time.Time
}

func (c *CA) sign(s leafSpec) ([]byte, error) {
	if c.key == nil {
		return nil, ErrNoSigningKey
	}
	if !ValidRole(s.role) {
		return nil, fmt.Errorf("%w: unknown role %q", ErrInvalid, s.role)
	}
	if s.nodeID == "" && s.role == RoleAdmin {
		s.nodeID = NewAdminID()
	}
	if s.nodeID == "" || s.clusterID == "" {
		return nil, fmt.Errorf("%w: node ID and cluster ID are required", ErrInvalid)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         s.nodeID,
			OrganizationalUnit: []string{s.role},
			Organization:       []string{s.clusterID},
		},
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	setRoleUsage(tmpl, s.role, s.nodeID, s.hosts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, s.pub, c.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign certificate for %s: %w", s.nodeID, err)
	}
	return encodeCertPEM(der), nil
}

// setRoleUsage decides what a certificate may be used for. Managers serve
// the API and Raft, so they get ServerAuth and SANs for every address they
// may be dialled at (loopback always, for the local CLI and tests). Workers
// may serve too (should a manager ever dial one), but only under their node
// ID, so a worker can never pass for a manager's address. Admins only dial.
func setRoleUsage(tmpl *x509.Certificate, role, nodeID string, hosts []string) {
	switch role {
	case RoleManager:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames, tmpl.IPAddresses = splitHosts(append([]string{nodeID, "localhost", "127.0.0.1", "::1"}, hosts...))
	case RoleWorker:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames = []string{nodeID}
	default:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
}

// splitHosts sorts hosts into DNS names and IPs, dropping duplicates and
// empty entries. A "host:port" loses its port, since advertise addresses
// usually carry one and a SAN never does.
func splitHosts(hosts []string) (dns []string, ips []net.IP) {
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

// checkPublicKey refuses keys too weak to trust with a cluster identity.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize < 256 {
			return fmt.Errorf("%w: ECDSA key on %s is too weak", ErrInvalid, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("%w: RSA key of %d bits is too weak", ErrInvalid, k.N.BitLen())
		}
	default:
		return fmt.Errorf("%w: unsupported public key type %T", ErrInvalid, pub)
	}
	return nil
}
