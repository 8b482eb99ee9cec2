package containerd

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
)

// Connect returns an Executor for the containerd answering at socket or,
// when none answers there and a containerd binary is installed, for one it
// starts and supervises under dataDir. close releases the connection and
// stops an own containerd; containers keep running either way.
func Connect(ctx context.Context, socket, dataDir string, logger *slog.Logger) (e *Executor, close func(), err error) {
	if logger == nil {
		logger = slog.Default()
	}
	addr := socket
	stopOwn := func() {}
	if !Reachable(ctx, addr) {
		if _, err := exec.LookPath("containerd"); err != nil {
			return nil, nil, fmt.Errorf("no containerd answers at %s, and no containerd binary is installed to start one: install containerd and runc (apt-get install containerd runc) or pass --containerd-socket", addr)
		}
		own, err := StartOwnContainerd(ctx, dataDir, WithLogger(logger))
		if err != nil {
			return nil, nil, err
		}
		addr = own.Address
		stopOwn = func() {
			if err := own.Stop(); err != nil {
				logger.Warn("stop containerd", "err", err)
			}
		}
		logger.Info("no containerd at the configured socket: running our own", "socket", addr)
	}
	e, err = New(ctx, Config{Address: addr, Logger: logger})
	if err != nil {
		stopOwn()
		return nil, nil, err
	}
	return e, func() { _ = e.Close(); stopOwn() }, nil
}
