package ca

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"testing"
	"time"
)

func TestIssueFromCSR(t *testing.T) {
	c := newTestCA(t)
	tests := []struct {
		name, nodeID, role string
		csrHosts           []string
		wantDNS            []string
		wantIPs            []string
		wantEKU            []x509.ExtKeyUsage
	}{
		{"worker ignores CSR SANs", "node-w1", RoleWorker, []string{"manager.example", "10.0.0.9"},
			[]string{"node-w1"}, nil,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}},
		{"manager keeps CSR SANs", "node-m1", RoleManager, []string{"m1.example", "10.0.0.1:2377"},
			[]string{"node-m1", "localhost", "m1.example"}, []string{"127.0.0.1", "::1", "10.0.0.1"},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}},
		{"admin is client only", "admin-1", RoleAdmin, []string{"x.example"},
			nil, nil,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := GenerateKey()
			must(t, err)
			csr, err := NewCSR(key, "ignored-cn", tt.csrHosts...)
			must(t, err)
			certPEM, err := c.IssueFromCSR(csr, tt.nodeID, tt.role, testCluster, time.Hour)
			if err != nil {
				t.Fatalf("IssueFromCSR: %v", err)
			}
			cert := mustParseCert(t, certPEM)
			if !key.PublicKey.Equal(cert.PublicKey) {
				t.Error("certificate does not carry the requester's public key")
			}
			id, err := IdentityFromCert(cert)
			if err != nil {
				t.Fatalf("IdentityFromCert: %v", err)
			}
			if want := (Identity{tt.nodeID, tt.role, testCluster}); id != want {
				t.Errorf("identity = %+v, want %+v", id, want)
			}
			if !slices.Equal(cert.DNSNames, tt.wantDNS) {
				t.Errorf("DNSNames = %q, want %q", cert.DNSNames, tt.wantDNS)
			}
			if got := ipStrings(cert.IPAddresses); !slices.Equal(got, tt.wantIPs) {
				t.Errorf("IPAddresses = %q, want %q", got, tt.wantIPs)
			}
			if !slices.Equal(cert.ExtKeyUsage, tt.wantEKU) {
				t.Errorf("ExtKeyUsage = %v, want %v", cert.ExtKeyUsage, tt.wantEKU)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: c.Pool(), KeyUsages: tt.wantEKU}); err != nil {
				t.Errorf("certificate does not verify against the CA: %v", err)
			}
		})
	}
}

func TestIssueFromCSRRejectsBadSignature(t *testing.T) {
	c := newTestCA(t)
	key, err := GenerateKey()
	must(t, err)
	csr, err := NewCSR(key, "node-abc")
	must(t, err)
	tests := []struct {
		name   string
		tamper func([]byte) []byte
	}{
		{"signature flipped", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }},
		{"subject changed after signing", func(b []byte) []byte { return bytes.Replace(b, []byte("node-abc"), []byte("node-xyz"), 1) }},
		{"not a CSR", func([]byte) []byte { return []byte("hello") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := tt.tamper(slices.Clone(csr))
			_, err := c.IssueFromCSR(bad, "n1", RoleWorker, testCluster, 0)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestIssueValidation(t *testing.T) {
	c := newTestCA(t)
	tests := []struct {
		name, nodeID, role, clusterID string
		ttl                           time.Duration
		wantErr                       bool
	}{
		{"default ttl", "n1", RoleWorker, testCluster, 0, false},
		{"one minute ttl", "n1", RoleWorker, testCluster, time.Minute, false},
		{"ttl too short", "n1", RoleWorker, testCluster, 30 * time.Second, true},
		{"unknown role", "n1", "root", testCluster, 0, true},
		{"empty node ID", "", RoleWorker, testCluster, 0, true},
		{"empty cluster ID", "n1", RoleManager, "", 0, true},
		{"admin gets random ID", "", RoleAdmin, testCluster, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := c.Issue(tt.nodeID, tt.role, tt.clusterID, tt.ttl, nil)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("err = %v, want ErrInvalid", err)
				}
				return
			}
			must(t, err)
			kp, err := NewKeyPair(certPEM, keyPEM)
			must(t, err)
			cert := kp.Leaf()
			ttl := tt.ttl
			if ttl == 0 {
				ttl = DefaultCertTTL
			}
			if life := cert.NotAfter.Sub(cert.NotBefore); life != ttl+clockSkew {
				t.Errorf("lifetime = %v, want ttl %v + %v backdating", life, ttl, clockSkew)
			}
			if cert.SerialNumber.BitLen() < 64 {
				t.Errorf("serial %v looks too small to be random 128-bit", cert.SerialNumber)
			}
			if tt.role == RoleAdmin && tt.nodeID == "" && len(cert.Subject.CommonName) != len("admin-")+16 {
				t.Errorf("admin CN = %q, want admin-<16 hex>", cert.Subject.CommonName)
			}
		})
	}
}

func TestIssueCappedAtRootExpiry(t *testing.T) {
	c, err := Generate("short", time.Hour)
	must(t, err)
	certPEM, _, err := c.Issue("n1", RoleWorker, testCluster, DefaultCertTTL, nil)
	must(t, err)
	if cert := mustParseCert(t, certPEM); cert.NotAfter.After(c.Cert().NotAfter) {
		t.Errorf("leaf NotAfter %v outlives root %v", cert.NotAfter, c.Cert().NotAfter)
	}
}

func TestSerialsDiffer(t *testing.T) {
	c := newTestCA(t)
	a := issuePair(t, c, "n1", RoleWorker).Leaf().SerialNumber
	b := issuePair(t, c, "n1", RoleWorker).Leaf().SerialNumber
	if a.Cmp(b) == 0 {
		t.Error("two certificates share a serial number")
	}
}

func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}
