package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
)

// obtain gets a missing image: from an imported archive when the node
// knows one holding it (so a node that joined late loads the archive
// before it runs the task, and no registry is asked), else by a pull with
// auth (nil: anonymous).
func (x *taskExec) obtain(ctx context.Context, ref string, auth *runtime.RegistryAuth, progress func(string)) error {
	if x.archives != nil {
		handled, err := x.archives.await(ctx, ref, progress)
		if handled {
			if err != nil {
				return err
			}
			if has, err := x.rt.HasImage(ctx, ref); err != nil || !has {
				return fmt.Errorf("the imported archive naming %s was loaded, but the image is not there (%v)", ref, err)
			}
			return nil
		}
	}
	if err := x.pull(ctx, ref, auth, progress); err != nil {
		return err
	}
	if x.imagesChanged != nil {
		x.imagesChanged(ctx)
	}
	return nil
}

// pull pulls ref, passing progress on at most every progressEvery.
func (x *taskExec) pull(ctx context.Context, ref string, auth *runtime.RegistryAuth, progress func(string)) error {
	var mu sync.Mutex
	var last time.Time
	return x.rt.PullImage(ctx, ref, auth, func(p runtime.PullProgress) {
		mu.Lock()
		defer mu.Unlock()
		if now := x.now(); progress != nil && (last.IsZero() || now.Sub(last) >= x.progressEvery) {
			last = now
			progress(formatProgress(p))
		}
	})
}

func formatProgress(p runtime.PullProgress) string {
	const mib = 1 << 20
	if p.Total <= 0 {
		return fmt.Sprintf("pulling %s: %s", p.Ref, p.Status)
	}
	return fmt.Sprintf("pulling %s: %.1f of %.1f MiB", p.Ref, float64(p.Done)/mib, float64(p.Total)/mib)
}

// pullAuth returns the registry credentials task t came with, when they are
// for the registry of ref. They live in memory only, with the task: never
// written to disk, never logged.
func pullAuth(t *api.Task, ref string) *runtime.RegistryAuth {
	return runtime.PullAuth(t.GetRegistryAuth(), ref)
}
