package bridge

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// maxDumpTries bounds the retries of a netlink dump the kernel interrupted
// because links changed meanwhile (other tasks attaching).
const maxDumpTries = 5

// ensureNetNS makes path a network namespace file. A file that is not one
// (left by a reboot, which drops every mount, or by a crash between
// creating the file and mounting on it) is replaced; a live namespace is
// kept, since a container may live in it.
func ensureNetNS(path string) (created bool, err error) {
	live, err := isNetNS(path)
	if err != nil || live {
		return false, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("remove stale namespace file %s: %w", path, err)
	}
	return true, createNetNS(path)
}

// isNetNS says whether path is a mounted network namespace (a bind mount
// of nsfs); a missing path is not.
func isNetNS(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("stat namespace file %s: %w", path, err)
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// createNetNS makes a new network namespace and bind-mounts it on path,
// which must not exist. The namespace is made on a thread of its own that
// is never given back: it exits with its goroutine, so no other goroutine
// can ever run in the wrong namespace, even if switching back would fail.
func createNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create namespace file: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mount new namespace on %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}

// removeNetNS unmounts and removes a namespace file; the namespace itself
// lives on while a process is in it. A missing file is fine.
func removeNetNS(path string) error {
	// Unmount until nothing is mounted there: a file mounted twice (by
	// hand, or by a buggy earlier version) must not keep the file busy.
	for range 8 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not a mount point (any more), or gone
		}
		if err != nil {
			return fmt.Errorf("unmount namespace %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove namespace file %s: %w", path, err)
	}
	return nil
}

// runInNetNS runs fn on a thread in the network namespace at path. Like
// createNetNS, the thread is never unlocked and dies afterwards.
func runInNetNS(path string, fn func() error) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// writeSysctl sets /proc/sys/name in the calling thread's namespace (for
// net/ keys, the namespace of the thread that opens the file counts).
func writeSysctl(name, value string) error {
	path := "/proc/sys/" + name
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// disableIPv6 turns IPv6 off on a link; a kernel without IPv6 needs
// nothing.
func disableIPv6(link string) error {
	err := writeSysctl("net/ipv6/conf/"+link+"/disable_ipv6", "1")
	if errors.Is(err, os.ErrNotExist) {
		if _, statErr := os.Stat("/proc/sys/net/ipv6"); errors.Is(statErr, os.ErrNotExist) {
			return nil
		}
	}
	return err
}

// addrList lists a link's IPv4 addresses, retrying a dump that the kernel
// interrupted because addresses or links changed meanwhile.
func addrList(h *netlink.Handle, link netlink.Link) ([]netlink.Addr, error) {
	var err error
	for range maxDumpTries {
		var addrs []netlink.Addr
		addrs, err = h.AddrList(link, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return addrs, err
		}
	}
	return nil, err
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// randomMAC returns a random unicast, locally administered MAC address.
func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	_, _ = rand.Read(mac) // crypto/rand does not fail on Linux
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}
