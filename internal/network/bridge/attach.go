package bridge

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/warren-project/warren/internal/network/ipam"
	"golang.org/x/sys/unix"
)

// peerName is the container's side of its veth, inside its namespace.
const peerName = "eth0"

// Attachment is a task's place on the bridge, as the runtime needs it.
type Attachment struct {
	TaskID string
	// Address is the container's address with its block's length, e.g.
	// 10.200.3.7/24.
	Address netip.Prefix
	// NetNS is the path of the namespace file: the runtime joins it (the
	// OCI spec's network namespace path).
	NetNS string
	// ResolvConf, Hosts and Hostname are files to bind-mount read-only on
	// the container's /etc/resolv.conf, /etc/hosts and /etc/hostname.
	ResolvConf, Hosts, Hostname string
}

// AttachOptions says what a task's attachment should be.
type AttachOptions struct {
	// TaskID names the namespace file and the host end of the veth: 1 to
	// 64 letters, digits, '-' or '_'.
	TaskID  string
	Address netip.Addr // in the gateway's block
	// Hostname goes into the hostname file and /etc/hosts; default the
	// task ID.
	Hostname string
	// DNS is the nameserver put in resolv.conf; default the gateway (the
	// node's DNS server listens there).
	DNS netip.Addr
}

// Attach gives a task its namespace with a veth on the bridge, its
// address, a default route through the gateway and its /etc files, and
// returns where they are. Ensure must have made the bridge.
//
// It converges: a namespace that exists is kept (a container may live in
// it; a warren restart adopts it) and only what differs is changed, so
// calling it again for an attached task changes nothing. A file left at
// the namespace path with no namespace mounted (after a reboot) is
// replaced by a new namespace. If Attach fails, a namespace it created is
// removed again.
func (b *Bridge) Attach(ctx context.Context, o AttachOptions) (Attachment, error) {
	if err := ctx.Err(); err != nil {
		return Attachment{}, fmt.Errorf("attach task %s: %w", o.TaskID, err)
	}
	o, err := b.checkAttach(o)
	if err != nil {
		return Attachment{}, fmt.Errorf("attach task %s: %w", o.TaskID, err)
	}
	defer b.tasks.Lock(o.TaskID)()
	a := b.attachment(o)
	if err := os.MkdirAll(b.cfg.Dir, 0o755); err != nil {
		return Attachment{}, fmt.Errorf("attach task %s: create namespace directory: %w", o.TaskID, err)
	}
	created, err := ensureNetNS(a.NetNS)
	if err != nil {
		return Attachment{}, fmt.Errorf("attach task %s: %w", o.TaskID, err)
	}
	if err := b.attach(o, a); err != nil {
		if created {
			if derr := b.detach(o.TaskID); derr != nil {
				b.log.Warn("cleanup after failed attach failed", "task.id", o.TaskID, "err", derr)
			}
		}
		return Attachment{}, fmt.Errorf("attach task %s: %w", o.TaskID, err)
	}
	if created {
		b.log.Info("task attached", "task.id", o.TaskID, "address", a.Address, "netns", a.NetNS)
	}
	return a, nil
}

// checkAttach validates o and fills in its defaults.
func (b *Bridge) checkAttach(o AttachOptions) (AttachOptions, error) {
	if err := checkTaskID(o.TaskID); err != nil {
		return o, err
	}
	g := b.cfg.Gateway
	if !o.Address.Is4() || !g.Contains(o.Address) {
		return o, fmt.Errorf("address %v is not an IPv4 address in the node's block %s", o.Address, g.Masked())
	}
	if o.Address == g.Addr() || o.Address == g.Masked().Addr() || o.Address == ipam.Broadcast(g) {
		return o, fmt.Errorf("address %v is the block's gateway, network or broadcast address", o.Address)
	}
	if o.Hostname == "" {
		o.Hostname = o.TaskID
	}
	if err := checkHostname(o.Hostname); err != nil {
		return o, err
	}
	if !o.DNS.IsValid() {
		o.DNS = g.Addr()
	}
	return o, nil
}

func (b *Bridge) attachment(o AttachOptions) Attachment {
	path := b.nsPath(o.TaskID)
	return Attachment{
		TaskID:     o.TaskID,
		Address:    netip.PrefixFrom(o.Address, b.cfg.Gateway.Bits()),
		NetNS:      path,
		ResolvConf: filepath.Join(path+".d", "resolv.conf"),
		Hosts:      filepath.Join(path+".d", "hosts"),
		Hostname:   filepath.Join(path+".d", "hostname"),
	}
}

func (b *Bridge) nsPath(taskID string) string { return filepath.Join(b.cfg.Dir, taskID) }

// attach plumbs the veth and writes the files of an existing namespace.
func (b *Bridge) attach(o AttachOptions, a Attachment) error {
	host, err := b.hostHandle()
	if err != nil {
		return err
	}
	defer host.Close()
	br, err := host.LinkByName(b.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("find bridge %s (Ensure makes it; has it run?): %w", b.cfg.Bridge, err)
	}
	ns, err := netns.GetFromPath(a.NetNS)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", a.NetNS, err)
	}
	defer ns.Close()
	task, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink in namespace %s: %w", a.NetNS, err)
	}
	defer task.Close()
	hostEnd, err := b.ensureVeth(host, task, ns, vethName(o.TaskID), br)
	if err != nil {
		return err
	}
	if err := b.setupHostEnd(host, hostEnd, br); err != nil {
		return err
	}
	if err := b.setupPeer(task, a.Address); err != nil {
		return err
	}
	return writeTaskFiles(a, o)
}
