package dispatcher

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/imagestore"
	"github.com/warren-project/warren/internal/state"
)

const appRef = "docker.io/library/app:1"

func archive(digest, holder string, refs []string, nodes ...string) *api.ImageArchive {
	return &api.ImageArchive{Digest: digest, Refs: refs, HolderNodeId: holder, NodeIds: nodes}
}

func withImages(id string, refs ...string) *api.Node {
	n := &api.Node{Id: id, Meta: &api.Meta{}, Description: &api.NodeDescription{}}
	for _, r := range refs {
		n.Description.Images = append(n.Description.Images, &api.Image{Ref: r})
	}
	return n
}

func digests(as []*api.ImageArchive) string {
	var out []string
	for _, a := range as {
		out = append(out, a.GetDigest())
	}
	return strings.Join(out, ",")
}

func TestImageSetDecidesWhatToLoad(t *testing.T) {
	app := []string{appRef}
	cases := []struct {
		name     string
		archives []*api.ImageArchive // in the store when the session starts
		node     *api.Node
		start    string // digests sent at the start
		event    *state.Event
		then     string // digests sent after event
	}{
		{name: "aimed at every node, not held", archives: []*api.ImageArchive{archive("d1", "m", app)}, node: withImages("n1"), start: "d1"},
		{name: "aimed at the node", archives: []*api.ImageArchive{archive("d1", "m", app, "n1")}, node: withImages("n1"), start: "d1"},
		{name: "aimed at another node", archives: []*api.ImageArchive{archive("d1", "m", app, "n2")}, node: withImages("n1")},
		{name: "already held", archives: []*api.ImageArchive{archive("d1", "m", app)}, node: withImages("n1", appRef)},
		{name: "partly held", archives: []*api.ImageArchive{archive("d1", "m", []string{appRef, "docker.io/library/b:1"})}, node: withImages("n1", appRef), start: "d1"},
		{
			name: "imported during the session though held: a re-import", node: withImages("n1", appRef),
			event: &state.Event{Kind: state.EventUpdate, Object: &api.Cluster{Id: "c", ImageArchives: []*api.ImageArchive{archive("d2", "m", app)}}},
			then:  "d2",
		},
		{
			name: "imported during the session by the node itself", node: withImages("n1", appRef),
			event: &state.Event{Kind: state.EventUpdate, Object: &api.Cluster{Id: "c", ImageArchives: []*api.ImageArchive{archive("d2", "n1", app)}}},
		},
		{
			name: "imported by the node itself, its images recorded in the next event", node: withImages("n1"),
			event: &state.Event{Kind: state.EventUpdate, Object: &api.Cluster{Id: "c", ImageArchives: []*api.ImageArchive{archive("d2", "n1", app)}}},
		},
		{
			name: "image gone from the node", archives: []*api.ImageArchive{archive("d1", "m", app)}, node: withImages("n1", appRef),
			event: &state.Event{Kind: state.EventUpdate, Object: withImages("n1")}, then: "d1",
		},
		{
			name: "sent once per session", archives: []*api.ImageArchive{archive("d1", "m", app)}, node: withImages("n1"), start: "d1",
			event: &state.Event{Kind: state.EventUpdate, Object: withImages("n1", "docker.io/library/other:1")},
		},
		{
			name: "another node's report", archives: []*api.ImageArchive{archive("d1", "m", app)}, node: withImages("n1", appRef),
			event: &state.Event{Kind: state.EventUpdate, Object: withImages("n2")},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := state.NewTestStore()
			if err := store.Update(context.Background(), func(tx state.Tx) error {
				if err := tx.Create(&api.Cluster{Id: "c", Meta: &api.Meta{}, ImageArchives: c.archives}); err != nil {
					return err
				}
				return tx.Create(c.node)
			}); err != nil {
				t.Fatal(err)
			}
			s := newImageSet("n1")
			var sent []*api.ImageArchive
			store.View(func(tx state.ReadTx) { sent = s.start(tx) })
			if got := digests(sent); got != c.start {
				t.Fatalf("sent at the start: %q, want %q", got, c.start)
			}
			if c.event == nil {
				return
			}
			var then []*api.ImageArchive
			if s.concerns(*c.event) {
				then = s.observe(*c.event)
			}
			if got := digests(then); got != c.then {
				t.Fatalf("sent after the event: %q, want %q", got, c.then)
			}
		})
	}
}

func (e *testEnv) setArchives(t *testing.T, archives ...*api.ImageArchive) {
	t.Helper()
	e.update(t, func(tx state.Tx) error {
		c := tx.GetCluster()
		if c == nil {
			return tx.Create(&api.Cluster{Id: "c", Meta: &api.Meta{}, ImageArchives: archives})
		}
		c.ImageArchives = archives
		return tx.Update(c)
	})
}

func (n *nodeStream) nextLoad(t *testing.T) *api.ImageArchive {
	t.Helper()
	select {
	case l := <-n.loads:
		return l
	case err := <-n.end:
		t.Fatalf("session ended (%v) before a load_image came", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no load_image within 10s")
	}
	return nil
}

func TestSessionSendsImageLoads(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.setArchives(t, archive("d1", "m", []string{appRef}))

	// A node holding the image is not asked to load it...
	held, err := e.connect(t, &api.RegisterRequest{NodeId: "n2", Images: []*api.Image{{Ref: appRef, Digest: "sha256:a"}}})
	if err != nil {
		t.Fatal(err)
	}
	held.next(t) // loads come before the COMPLETE assignments
	if len(held.loads) != 0 {
		t.Fatalf("a node holding the image got load_image %v", <-held.loads)
	}
	if imgs := e.node("n2").GetDescription().GetImages(); len(imgs) != 1 || imgs[0].GetRef() != appRef {
		t.Fatalf("registered images = %v", imgs)
	}
	// ...one lacking it is, before its assignments.
	n := e.mustConnect(t, "n1")
	if l := n.nextLoad(t); l.GetDigest() != "d1" {
		t.Fatalf("load_image = %v, want d1", l)
	}
	n.next(t)

	// An archive imported during the session is sent at once.
	e.setArchives(t, archive("d1", "m", []string{appRef}), archive("d2", "m", []string{"docker.io/library/b:1"}, "n1"))
	if l := n.nextLoad(t); l.GetDigest() != "d2" {
		t.Fatalf("load_image = %v, want d2", l)
	}

	// The node's reports are written once per change.
	report := func(refs ...string) {
		var imgs []*api.Image
		for _, r := range refs {
			imgs = append(imgs, &api.Image{Ref: r, Digest: "sha256:" + r})
		}
		if err := n.send(&api.SessionRequest{Msg: &api.SessionRequest_Images{Images: &api.NodeImages{Images: imgs}}}); err != nil {
			t.Fatal(err)
		}
	}
	report(appRef, "docker.io/library/b:1")
	waitFor(t, "n1's images in the store", func() bool { return len(e.node("n1").GetDescription().GetImages()) == 2 })
	writes := e.proposer.count()
	report("docker.io/library/b:1", appRef) // the same, in another order
	report(appRef)
	waitFor(t, "n1's new report in the store", func() bool { return len(e.node("n1").GetDescription().GetImages()) == 1 })
	if got := e.proposer.count() - writes; got != 1 {
		t.Fatalf("%d writes for one changed and one unchanged report, want 1", got)
	}
}

// fetchEnv serves archives from an imagestore held by manager "m".
func fetchEnv(t *testing.T, authorize func(context.Context, string) error) (*testEnv, *imagestore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	archives, err := imagestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Archives, cfg.ManagerNodeID, cfg.Authorize = archives, "m", authorize
	return newTestEnv(t, cfg), archives, dir
}

func (e *testEnv) fetch(nodeID, digest string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if nodeID != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, NodeIDMetadata, nodeID)
	}
	stream, err := e.client.FetchImage(ctx, &api.FetchImageRequest{Digest: digest})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return buf.Bytes(), nil
		}
		if err != nil {
			return buf.Bytes(), err
		}
		buf.Write(chunk.GetData())
	}
}

func TestFetchImage(t *testing.T) {
	refuse := errors.New("certificate of another node")
	e, archives, dir := fetchEnv(t, func(_ context.Context, nodeID string) error {
		if nodeID == "n3" {
			return refuse
		}
		return nil
	})
	data := bytes.Repeat([]byte("0123456789abcdef"), (FetchChunkSize*5/2)/16) // two and a half chunks
	digest, _, err := archives.Put(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// An archive imported through another manager, not copied here.
	other := "sha256:" + strings.Repeat("1", 64)
	e.update(t, func(tx state.Tx) error { return tx.Create(&api.Node{Id: "n3", Meta: &api.Meta{}}) })
	e.setArchives(t, archive(digest, "m", []string{appRef}, "n1", "n3"), archive(other, "m2", []string{"docker.io/library/b:1"}))

	got, err := e.fetch("n1", digest)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetch by a target node: %d bytes (want %d), err %v", len(got), len(data), err)
	}
	cases := []struct {
		name, node, digest string
		code               codes.Code
	}{
		{"node not targeted", "n2", digest, codes.PermissionDenied},
		{"no node named", "", digest, codes.InvalidArgument},
		{"caller may not speak for the node", "n3", digest, codes.PermissionDenied},
		{"node not in the cluster", "n9", digest, codes.NotFound},
		{"no such archive", "n1", "sha256:" + strings.Repeat("0", 64), codes.NotFound},
		{"held by another manager, no copy here", "n1", other, codes.NotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.fetch(c.node, c.digest)
			if status.Code(err) != c.code || len(got) != 0 {
				t.Fatalf("fetch = %d bytes, %v; want nothing and %v", len(got), err, c.code)
			}
		})
	}

	t.Run("damaged on disk", func(t *testing.T) {
		path := filepath.Join(dir, "sha256", strings.TrimPrefix(digest, "sha256:")+".tar")
		if err := os.WriteFile(path, bytes.ToUpper(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := e.fetch("n1", digest); status.Code(err) != codes.DataLoss {
			t.Fatalf("fetch of a damaged archive: %v, want DataLoss", err)
		}
	})
}

// A node's fetch of an archive this manager lacks makes it copy the
// archive first; a manager's copy request does not, so two managers that
// both lack it never wait on each other.
func TestCopyFetchDoesNotReplicate(t *testing.T) {
	archives, err := imagestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var copies atomic.Int32
	cfg := testConfig()
	cfg.Archives, cfg.ManagerNodeID = archives, "m"
	cfg.Replicate = func(context.Context, *api.ImageArchive) error {
		copies.Add(1)
		return errors.New("no manager holds it")
	}
	e := newTestEnv(t, cfg)
	other := "sha256:" + strings.Repeat("1", 64)
	e.update(t, func(tx state.Tx) error {
		return tx.Create(&api.Node{Id: "m2", Meta: &api.Meta{}, Role: api.NodeRole_NODE_ROLE_MANAGER})
	})
	e.setArchives(t, archive(other, "m3", []string{appRef}, "n1"))

	if _, err := e.fetch("n1", other); status.Code(err) != codes.Unavailable || copies.Load() != 1 {
		t.Fatalf("a node's fetch: %v after %d copies; want Unavailable after one copy attempt", err, copies.Load())
	}
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(),
		NodeIDMetadata, "m2", CopyMetadata, "1"), 10*time.Second)
	defer cancel()
	stream, err := e.client.FetchImage(ctx, &api.FetchImageRequest{Digest: other})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.NotFound || copies.Load() != 1 {
		t.Fatalf("a manager's copy fetch: %v after %d copies; want NotFound and no copy attempt", err, copies.Load())
	}
}
