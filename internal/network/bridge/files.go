package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// writeTaskFiles writes the task's resolv.conf, hosts and hostname.
//
// resolv.conf names only the node's DNS server, which answers service
// names and forwards the rest: with ndots:0 a name such as "web" or
// "web.warren" is asked as it is first, not after trying search domains
// (there are none), so a service lookup is one query.
func writeTaskFiles(a Attachment, o AttachOptions) error {
	if err := os.MkdirAll(filepath.Dir(a.ResolvConf), 0o755); err != nil {
		return fmt.Errorf("create task files directory: %w", err)
	}
	files := []struct {
		path string
		data string
	}{
		{a.ResolvConf, fmt.Sprintf("nameserver %s\noptions ndots:0\n", o.DNS)},
		{a.Hosts, fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", o.Address, o.Hostname)},
		{a.Hostname, o.Hostname + "\n"},
	}
	for _, f := range files {
		if err := writeIfChanged(f.path, []byte(f.data)); err != nil {
			return err
		}
	}
	return nil
}

// writeIfChanged writes data to path unless it already holds it. It
// rewrites in place rather than renaming a new file over it: a running
// container has the file's inode bind-mounted and would never see a new
// one.
func writeIfChanged(path string, data []byte) error {
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// checkHostname keeps a hostname to what fits the kernel's hostname and
// one field of /etc/hosts.
func checkHostname(name string) error {
	if len(name) > 64 {
		return fmt.Errorf("hostname %q is longer than 64 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return fmt.Errorf("hostname %q has %q: use letters, digits, '-', '.' and '_'", name, r)
		}
	}
	return nil
}
