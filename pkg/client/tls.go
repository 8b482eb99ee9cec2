package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
)

// Files of a TLS directory, as `warren cluster init` writes them for an
// admin.
const (
	CAFile   = "ca.crt"
	CertFile = "client.crt"
	KeyFile  = "client.key"
)

// loadTLS reads an admin's certificate and the cluster CA from dir. Each
// manager's connection sets the name its certificate must carry.
func loadTLS(dir string) (*tls.Config, error) {
	hint := fmt.Sprintf("put the cluster's %s, %s and %s in %s, or choose another directory with --tls-dir or %s", CAFile, CertFile, KeyFile, dir, TLSDirEnv)
	caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("%w; %s", err, hint)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no PEM certificate; %s", filepath.Join(dir, CAFile), hint)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("load the client certificate: %w; %s", err, hint)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
	}, nil
}
