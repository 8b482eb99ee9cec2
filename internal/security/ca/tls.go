package ca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// ServerTLSConfig serves the certificate getCert returns at each handshake,
// so a renewed certificate is used without a restart (pass a KeyPair's
// Certificate method; getCert must not be nil). With requireClientCert false, clients without a
// certificate may connect (a node joining with a token), but any
// certificate offered must still chain to caPool.
func ServerTLSConfig(caPool *x509.CertPool, getCert func() *tls.Certificate, requireClientCert bool) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if requireClientCert {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientCAs:  caPool,
		ClientAuth: auth,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := getCert(); c != nil {
				return c, nil
			}
			return nil, errors.New("ca: server has no certificate yet")
		},
	}
}

// ClientTLSConfig trusts only caPool and checks the server's name against
// serverName (a manager's address or node ID). getCert may be nil, or return
// nil, for a client that has no certificate yet.
func ClientTLSConfig(caPool *x509.CertPool, getCert func() *tls.Certificate, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    caPool,
		ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if getCert != nil {
				if c := getCert(); c != nil {
					return c, nil
				}
			}
			// An empty certificate means "send none"; the server decides.
			return &tls.Certificate{}, nil
		},
	}
}
