package testutil

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryOption changes how StartRegistry runs the registry.
type RegistryOption func(*registryOpts)

type registryOpts struct {
	user, password string
}

// WithHtpasswd makes the registry require HTTP basic auth as user with
// password (an htpasswd file with a bcrypt entry, as the registry wants).
func WithHtpasswd(user, password string) RegistryOption {
	return func(o *registryOpts) { o.user, o.password = user, password }
}

// StartRegistry runs Debian's docker-registry on a free loopback port for
// the test's life and returns its host:port.
func StartRegistry(t testing.TB, opts ...RegistryOption) string {
	t.Helper()
	var o registryOpts
	for _, opt := range opts {
		opt(&o)
	}
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("no docker-registry binary (Debian: apt-get install docker-registry)")
	}
	addr := FreeAddr(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), addr)
	if o.user != "" {
		cfg += htpasswdConfig(t, dir, o.user, o.password)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "registry.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("registry log:\n%s", data)
		}
	})
	hc := &http.Client{Timeout: time.Second}
	WaitFor(t, 15*time.Second, "registry answering at "+addr, func() bool {
		select {
		case <-exited:
			data, _ := os.ReadFile(logPath)
			t.Fatalf("registry exited:\n%s", data)
		default:
		}
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if o.user != "" {
			req.SetBasicAuth(o.user, o.password)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

// htpasswdConfig writes an htpasswd file for user in dir and returns the
// registry config that uses it.
func htpasswdConfig(t testing.TB, dir, user, password string) string {
	t.Helper()
	// The least cost: the registry checks the hash on every request.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`auth:
  htpasswd:
    realm: warren-test
    path: %s
`, path)
}
