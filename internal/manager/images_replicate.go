package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/dispatcher"
	"github.com/warren-project/warren/internal/manager/imagestore"
	"github.com/warren-project/warren/internal/state"
)

// archiveCopier keeps a copy of every imported image archive on this
// manager, fetched from the managers that hold one, so that whichever
// manager leads can serve them to nodes, and an archive outlives the
// manager it was imported through.
type archiveCopier struct {
	m        *Manager
	archives *imagestore.Store
	mu       sync.Mutex // one copy at a time: archives are large
}

// copy fetches archive a unless it is here already.
func (c *archiveCopier) copy(ctx context.Context, a *api.ImageArchive) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc, _, err := c.archives.Open(a.GetDigest()); err == nil {
		rc.Close()
		return nil
	}
	var errs []error
	for _, addr := range c.sources(a) {
		err := c.fetch(ctx, addr, a.GetDigest())
		if err == nil {
			c.m.log.Info("image archive copied", "image.archive", a.GetDigest(), "from", addr)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	if len(errs) == 0 {
		return errors.New("no other manager is known")
	}
	return errors.Join(errs...)
}

// sources are the other managers' API addresses, the holder's first.
func (c *archiveCopier) sources(a *api.ImageArchive) []string {
	var out []string
	if holder := a.GetHolderNodeId(); holder != c.m.creds.NodeID {
		c.m.store.View(func(tx state.ReadTx) {
			if addr := tx.GetNode(holder).GetManagerStatus().GetApiAddr(); addr != "" {
				out = append(out, addr)
			}
		})
	}
	return appendNew(out, c.m.peerAPIAddrs()...)
}

// fetch streams the archive from the manager at addr into the store and
// checks it is the one asked for.
func (c *archiveCopier) fetch(ctx context.Context, addr, digest string) error {
	conn, err := c.m.dialPeer(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx,
		dispatcher.NodeIDMetadata, c.m.creds.NodeID, dispatcher.CopyMetadata, "1"))
	defer cancel()
	stream, err := api.NewDispatcherClient(conn).FetchImage(ctx, &api.FetchImageRequest{Digest: digest})
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				pw.Close()
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := pw.Write(chunk.GetData()); err != nil {
				return
			}
		}
	}()
	got, _, err := c.archives.Put(pr)
	pr.Close()
	if err != nil {
		return err
	}
	if got != digest {
		_ = c.archives.Remove(got)
		return fmt.Errorf("received %s, not %s", got, digest)
	}
	return nil
}

// run copies the cluster's archives this manager lacks, at start, whenever
// the cluster changes, and 10 s after a copy failed, until ctx ends.
func (c *archiveCopier) run(ctx context.Context) {
	for {
		var archives []*api.ImageArchive
		sub := c.m.store.ViewAndWatch(func(ev state.Event) bool {
			_, ok := ev.Object.(*api.Cluster)
			return ok || ev.Kind == state.EventRestore
		}, func(tx state.ReadTx) { archives = tx.GetCluster().GetImageArchives() })
		var retry <-chan time.Time // only when a copy failed
		for _, a := range archives {
			if err := c.copy(ctx, a); err != nil && ctx.Err() == nil {
				c.m.log.Warn("cannot copy an image archive to this manager yet", "image.archive", a.GetDigest(), "err", err)
				retry = time.After(10 * time.Second)
			}
		}
		select {
		case <-ctx.Done():
			sub.Cancel()
			return
		case <-sub.C:
		case <-retry:
		}
		sub.Cancel()
	}
}
