package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
)

const (
	pemCert = "CERTIFICATE"
	pemKey  = "PRIVATE KEY"    // PKCS#8, what EncodeKeyPEM writes
	pemEC   = "EC PRIVATE KEY" // SEC 1, accepted so keys made by openssl load too
)

// GenerateKey returns a new ECDSA P-256 key, the only key type Warren creates.
func GenerateKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// EncodeKeyPEM encodes key as a PKCS#8 "PRIVATE KEY" PEM block.
func EncodeKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: der}), nil
}

// ParseKeyPEM decodes an ECDSA private key from PKCS#8 or SEC 1 PEM.
func ParseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case pemEC:
		return x509.ParseECPrivateKey(block.Bytes)
	case pemKey:
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key is %T, want ECDSA", k)
		}
		return ec, nil
	default:
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, pemKey)
	}
}

// ParseCertPEM decodes the first PEM block of data, which must be a certificate.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != pemCert {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, pemCert)
	}
	return x509.ParseCertificate(block.Bytes)
}

func encodeCertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der})
}

// NewCSR returns a DER certificate request signed by key. The CA ignores the
// subject (it sets CN/OU/O itself); hosts matter only for a manager, whose
// certificate gets them as SANs so peers can dial its advertised addresses.
func NewCSR(key crypto.Signer, commonName string, hosts ...string) ([]byte, error) {
	dns, ips := splitHosts(hosts)
	tmpl := &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: commonName},
		DNSNames:    dns,
		IPAddresses: ips,
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("ca: create CSR: %w", err)
	}
	return der, nil
}
