package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/pkg/client"
)

type issueAdminOpts struct {
	out   string
	ttl   time.Duration
	force bool
}

func newClusterCACmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "ca", Short: "Work with the cluster's certificate authority", Args: cobra.NoArgs}
	o := &issueAdminOpts{}
	issue := &cobra.Command{
		Use:   "issue-admin --out DIR",
		Short: "Write an admin client bundle (ca.crt, client.crt, client.key) for remote use of the API",
		Long: `Makes a private key here, has the cluster sign an admin certificate for it,
and writes the bundle the CLI reads with --tls-dir (or ` + client.TLSDirEnv + `).
The key never leaves this machine. Whoever holds the bundle controls the cluster.`,
		Args: args(0, 0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error { return c.issueAdmin(cmd, o) },
	}
	f := issue.Flags()
	f.StringVar(&o.out, "out", "", "directory to write the bundle to (created 0700 if missing)")
	f.DurationVar(&o.ttl, "ttl", 0, fmt.Sprintf("lifetime of the certificate, such as 720h (default %d days, at least %s)",
		int(ca.DefaultCertTTL.Hours()/24), strings.TrimSuffix(ca.MinCertTTL.String(), "0s")))
	f.BoolVar(&o.force, "force", false, "overwrite a bundle already in --out")
	cmd.AddCommand(issue)
	return cmd
}

func (c *cli) issueAdmin(cmd *cobra.Command, o *issueAdminOpts) error {
	if err := o.check(); err != nil {
		return err
	}
	key, err := ca.GenerateKey()
	if err != nil {
		return fmt.Errorf("generate a private key: %w", err)
	}
	csr, err := ca.NewCSR(key, "admin")
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	req := &api.IssueAdminCertificateRequest{Csr: csr}
	if o.ttl != 0 {
		req.Ttl = durationpb.New(o.ttl)
	}
	resp, err := cl.IssueAdminCertificate(cmd.Context(), req)
	if err != nil {
		return err
	}
	cert, err := checkAdminCert(resp)
	if err != nil {
		return err
	}
	keyPEM, err := ca.EncodeKeyPEM(key)
	if err != nil {
		return err
	}
	if err := writeBundle(o.out, resp.GetCaCertificate(), resp.GetCertificate(), keyPEM); err != nil {
		return err
	}
	dir, _ := filepath.Abs(o.out)
	fmt.Fprintf(c.out, "Wrote an admin certificate to %s: %s, %s and %s (valid until %s).\n",
		dir, client.CAFile, client.CertFile, client.KeyFile, cert.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(c.out, "Keep %s secret: it gives full control of the cluster. Use the bundle with:\n\n    warren -H tcp://%s --tls-dir %s node ls\n",
		client.KeyFile, c.managerAddr(cmd.Context(), cl), dir)
	return nil
}

// check refuses what would fail or do harm before anything is asked of
// the cluster: a missing --out, a lifetime too short, an existing key.
func (o *issueAdminOpts) check() error {
	if o.out == "" {
		return fmt.Errorf("--out is required: the directory to write %s, %s and %s to", client.CAFile, client.CertFile, client.KeyFile)
	}
	if o.ttl != 0 && o.ttl < ca.MinCertTTL {
		return fmt.Errorf("invalid --ttl %s: a certificate must live at least %s", o.ttl, ca.MinCertTTL)
	}
	keyPath := filepath.Join(o.out, client.KeyFile)
	if _, err := os.Lstat(keyPath); err == nil && !o.force {
		return fmt.Errorf("%s already exists: refusing to overwrite a private key; choose another --out, or use --force", keyPath)
	}
	return nil
}

// checkAdminCert makes sure the answer is a client certificate of the CA
// that came with it, so a bundle that cannot work is never written.
func checkAdminCert(resp *api.IssueAdminCertificateResponse) (*x509.Certificate, error) {
	cert, err := ca.ParseCertPEM(resp.GetCertificate())
	if err != nil {
		return nil, fmt.Errorf("the manager returned an unreadable certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(resp.GetCaCertificate()) {
		return nil, fmt.Errorf("the manager returned no readable CA certificate")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("the manager returned a certificate its own CA does not vouch for: %w", err)
	}
	return cert, nil
}

// writeBundle writes ca.crt, then the certificate and key together (0644
// and 0600, each atomically), so a bundle is never half new.
func writeBundle(dir string, caPEM, certPEM, keyPEM []byte) error {
	if block, _ := pem.Decode(caPEM); block == nil {
		return fmt.Errorf("the manager returned no PEM CA certificate")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	caPath := filepath.Join(dir, client.CAFile)
	tmp := caPath + ".tmp"
	if err := os.WriteFile(tmp, caPEM, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", caPath, err)
	}
	if err := os.Rename(tmp, caPath); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", caPath, err)
	}
	// SaveKeyPair writes NAME.crt and NAME.key: client.crt and client.key.
	name := strings.TrimSuffix(client.CertFile, ".crt")
	if err := ca.SaveKeyPair(dir, name, certPEM, keyPEM); err != nil {
		return fmt.Errorf("write the admin certificate: %w", err)
	}
	return nil
}

// managerAddr is the API address to show in the usage hint: the one this
// CLI used, else the answering manager's address on the default port.
func (c *cli) managerAddr(ctx context.Context, cl *client.Client) string {
	if h, ok := strings.CutPrefix(cl.Host(), "tcp://"); ok {
		return h
	}
	addr := "MANAGER"
	if info, err := cl.GetClusterInfo(ctx, &api.GetClusterInfoRequest{}); err == nil {
		if n, err := cl.GetNode(ctx, &api.GetNodeRequest{Node: info.GetManagerNodeId()}); err == nil && n.GetNode().GetStatus().GetAddr() != "" {
			addr = n.GetNode().GetStatus().GetAddr()
		}
	}
	return net.JoinHostPort(addr, client.DefaultPort)
}
