package wireguard

import (
	"context"
	"fmt"
	"log/slog"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// userspace is wireguard-go running in this process on a TUN device. It
// is configured through the device's own IpcSet/IpcGet: a UAPI socket
// would live in /var/run/wireguard, shared by every node on the host.
type userspace struct {
	name string
	port int
	dev  *device.Device
}

// openUserspace creates the TUN and the device with its key and port. The
// UDP socket opens when the device comes up (see up).
func openUserspace(cfg Config, log *slog.Logger) (*userspace, error) {
	tdev, err := tun.CreateTUN(cfg.Name, cfg.MTU)
	if err != nil {
		return nil, fmt.Errorf("create TUN device %s: %w (needs /dev/net/tun and CAP_NET_ADMIN)", cfg.Name, err)
	}
	u := &userspace{name: cfg.Name, port: cfg.ListenPort}
	u.dev = device.NewDevice(tdev, conn.NewDefaultBind(), deviceLogger(log))
	conf := fmt.Sprintf("private_key=%s\nlisten_port=%d\n", hexKey(cfg.PrivateKey), cfg.ListenPort)
	if err := u.dev.IpcSet(conf); err != nil {
		u.dev.Close()
		return nil, fmt.Errorf("set key and port on wireguard-go device %s: %w", cfg.Name, err)
	}
	return u, nil
}

// up starts the device once its interface is up. wireguard-go does this
// on its own too when it sees the interface go up, but a failed bind there
// is only logged, and it then forgets the port, so that our own Up would
// quietly bind a random one. Hence the check that the port is ours, and
// one more try to bind it, which reports why it fails.
func (u *userspace) up() error {
	if err := u.dev.Up(); err != nil {
		return fmt.Errorf("start wireguard-go on %s: listen on UDP port %d: %w (is the port taken?)", u.name, u.port, err)
	}
	text, err := u.dev.IpcGet()
	if err != nil {
		return fmt.Errorf("read wireguard-go device %s: %w", u.name, err)
	}
	if listenPort(text) == u.port {
		return nil
	}
	if err := u.dev.IpcSet(fmt.Sprintf("listen_port=%d\n", u.port)); err != nil {
		return fmt.Errorf("start wireguard-go on %s: listen on UDP port %d: %w (is the port taken?)", u.name, u.port, err)
	}
	return nil
}

func (u *userspace) peers() ([]peerState, error) {
	text, err := u.dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("read wireguard-go device %s: %w", u.name, err)
	}
	peers, err := parseUAPI(text)
	if err != nil {
		return nil, fmt.Errorf("read wireguard-go device %s: %w", u.name, err)
	}
	return peers, nil
}

func (u *userspace) apply(changes []peerChange) error {
	if err := u.dev.IpcSet(formatUAPI(changes)); err != nil {
		return fmt.Errorf("configure peers of wireguard-go device %s: %w", u.name, err)
	}
	return nil
}

// close closes the device and with it the TUN, which makes the interface
// (and every route through it) disappear.
func (u *userspace) close() error {
	u.dev.Close()
	return nil
}

// deviceLogger passes wireguard-go's log to slog. Its errors are mostly
// about an unreachable peer and repeat every few seconds, so they are
// warnings here, not errors.
func deviceLogger(log *slog.Logger) *device.Logger {
	log = log.With("component", "wireguard-go")
	ctx := context.Background()
	return &device.Logger{
		Verbosef: func(format string, args ...any) {
			if log.Enabled(ctx, slog.LevelDebug) {
				log.Debug(fmt.Sprintf(format, args...))
			}
		},
		Errorf: func(format string, args ...any) {
			log.Warn(fmt.Sprintf(format, args...))
		},
	}
}
