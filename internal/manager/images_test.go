package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteserrors "github.com/containerd/containerd/v2/core/remotes/errors"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/apiserver"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/state"
)

func TestImportImageReachesEveryNode(t *testing.T) {
	c := newImageCluster(t, "m1", "w1", "w2")
	imgs, err := c.importText(appImage + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := nodesOf(imgs), appImage+" on m1,w1,w2"; got != want {
		t.Fatalf("imported %q, want %q", got, want)
	}
	for _, id := range []string{"m1", "w1", "w2"} {
		if !c.holds(id, appImage) {
			t.Fatalf("node %s does not hold %s", id, appImage)
		}
	}
	listed, err := c.images.ListImages(context.Background())
	if err != nil || nodesOf(listed) != appImage+" on m1,w1,w2" {
		t.Fatalf("ListImages = %q, %v", nodesOf(listed), err)
	}
	as := c.archivesRecorded()
	if len(as) != 1 || as[0].GetHolderNodeId() != "m1" || len(as[0].GetNodeIds()) != 0 || as[0].GetRefs()[0] != appImage {
		t.Fatalf("archives recorded = %v", as)
	}
}

func TestImportImageToChosenNodes(t *testing.T) {
	c := newImageCluster(t, "m1", "w1", "w2")
	imgs, err := c.importText(appImage, "w1")
	if err != nil {
		t.Fatal(err)
	}
	// The manager keeps the archive and imported it first: it holds it too.
	if got, want := nodesOf(imgs), appImage+" on m1,w1"; got != want {
		t.Fatalf("imported %q, want %q", got, want)
	}
	if c.holds("w2", appImage) {
		t.Fatal("w2 loaded an image imported to w1 only")
	}
}

func TestImportImageWithANodeDown(t *testing.T) {
	c := newImageCluster(t, "m1", "w1")
	// Named, a node that is away makes an error...
	imgs, err := c.importText(appImage, "w1", "w2")
	var inc *apiserver.IncompleteImportError
	if !errors.As(err, &inc) || !strings.Contains(inc.Missing["w2"], "node is unknown") || len(inc.Missing) != 1 {
		t.Fatalf("import with w2 never registered: %v, want w2 named as not loading it", err)
	}
	if got, want := nodesOf(imgs), appImage+" on m1,w1"; got != want {
		t.Fatalf("imported %q, want %q", got, want)
	}
	// ...but not for an import to every node: it loads it when it is back.
	imgs, err = c.importText("docker.io/library/b:1")
	if err != nil {
		t.Fatalf("import to every node with w2 away: %v", err)
	}
	if got, want := nodesOf(imgs), "docker.io/library/b:1 on m1,w1"; got != want {
		t.Fatalf("imported %q, want %q", got, want)
	}
	c.startAgent("w2")
	waitUntil(t, "w2, back, loading both images", func() bool {
		listed, _ := c.images.ListImages(context.Background())
		return nodesOf(listed) == appImage+" on m1,w1,w2; docker.io/library/b:1 on m1,w1,w2"
	})
}

func TestImportImageWaitIsBounded(t *testing.T) {
	c := newImageCluster(t, "m1", "w1")
	c.images.loadWait = 100 * time.Millisecond
	c.execs["w1"].hold() // w1's import never ends
	c.update(func(tx state.Tx) error { return tx.Delete(&api.Node{Id: "w2"}) })
	_, err := c.importText(appImage)
	var inc *apiserver.IncompleteImportError
	if !errors.As(err, &inc) || !strings.Contains(inc.Missing["w1"], "did not report the image within 100ms") {
		t.Fatalf("import = %v, want w1 named as not reporting in time", err)
	}
}

func TestImportImageRefusesUnknownNodes(t *testing.T) {
	c := newImageCluster(t)
	if _, err := c.importText(appImage, "w1", "nope"); !errors.Is(err, apiserver.ErrInvalidImport) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("import to an unknown node = %v, want ErrInvalidImport naming it", err)
	}
	if ds, _ := c.archives.Digests(); len(ds) != 0 || len(c.archivesRecorded()) != 0 {
		t.Fatalf("a refused import left archives %v, records %v", ds, c.archivesRecorded())
	}
}

func TestReimportReplacesTheArchive(t *testing.T) {
	c := newImageCluster(t, "m1", "w1")
	c.update(func(tx state.Tx) error { return tx.Delete(&api.Node{Id: "w2"}) })
	if _, err := c.importText(appImage + "\n" + "docker.io/library/b:1\n"); err != nil {
		t.Fatal(err)
	}
	first := c.archivesRecorded()[0].GetDigest()
	// New content under one of the names: w1 loads it again.
	imgs, err := c.importText(appImage + "\n\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := nodesOf(imgs), appImage+" on m1,w1"; got != want {
		t.Fatalf("re-imported %q, want %q", got, want)
	}
	as := c.archivesRecorded()
	if len(as) != 2 || as[0].GetDigest() != first || strings.Join(as[0].GetRefs(), ",") != "docker.io/library/b:1" {
		t.Fatalf("archives = %v, want the first keeping only b:1, and the new one", as)
	}
	// A third import names every image again: the others go, files too.
	if _, err := c.importText(appImage + "\ndocker.io/library/b:1\n\n"); err != nil {
		t.Fatal(err)
	}
	ds, _ := c.archives.Digests()
	if as := c.archivesRecorded(); len(as) != 1 || len(ds) != 1 || ds[0] != as[0].GetDigest() {
		t.Fatalf("archives = %v, files %v; want only the last one", as, ds)
	}
}

func TestMergeArchive(t *testing.T) {
	a := func(d string, refs string, nodes ...string) *api.ImageArchive {
		return &api.ImageArchive{Digest: d, Refs: strings.Split(refs, ","), NodeIds: nodes}
	}
	show := func(as []*api.ImageArchive) string {
		var out []string
		for _, x := range as {
			out = append(out, x.GetDigest()+"="+strings.Join(x.GetRefs(), ",")+"@"+strings.Join(x.GetNodeIds(), ","))
		}
		return strings.Join(out, " ")
	}
	cases := []struct {
		name          string
		old           []*api.ImageArchive
		add           *api.ImageArchive
		want, dropped string
	}{
		{"first", nil, a("d1", "x"), "d1=x@", ""},
		{"same bytes, more nodes", []*api.ImageArchive{a("d1", "x", "n1")}, a("d1", "x", "n2"), "d1=x@n1,n2", ""},
		{"same bytes, every node", []*api.ImageArchive{a("d1", "x", "n1")}, a("d1", "x"), "d1=x@", ""},
		{"new content, same name", []*api.ImageArchive{a("d1", "x")}, a("d2", "x"), "d2=x@", "d1=x@"},
		{"overlap", []*api.ImageArchive{a("d1", "x,y")}, a("d2", "y,z"), "d1=x@ d2=y,z@", ""},
		{"unrelated", []*api.ImageArchive{a("d1", "x")}, a("d2", "y"), "d1=x@ d2=y@", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, dropped := mergeArchive(c.old, c.add)
			if show(out) != c.want || show(dropped) != c.dropped {
				t.Fatalf("merge = %q dropping %q; want %q dropping %q", show(out), show(dropped), c.want, c.dropped)
			}
		})
	}
}

func TestCheckImage(t *testing.T) {
	c := newImageCluster(t)
	asked := 0
	c.images.resolve = func(context.Context, string, *runtime.RegistryAuth) error { asked++; return errors.New("no registry") }
	c.update(func(tx state.Tx) error {
		cl := tx.GetCluster()
		cl.ImageArchives = []*api.ImageArchive{{Digest: "d1", Refs: []string{appImage}}}
		n := tx.GetNode("w1")
		n.Description = &api.NodeDescription{Images: []*api.Image{{Ref: "docker.io/library/held:1"}}}
		return errors.Join(tx.Update(cl), tx.Update(n))
	})
	c.execs["m1"].AddImage("docker.io/library/local:1")
	for _, ref := range []string{appImage, "docker.io/library/held:1", "docker.io/library/local:1"} {
		if err := c.images.CheckImage(context.Background(), ref, nil); err != nil {
			t.Fatalf("CheckImage(%s) = %v", ref, err)
		}
	}
	if asked != 0 {
		t.Fatal("asked a registry about an image the cluster has")
	}
	if err := c.images.CheckImage(context.Background(), "docker.io/library/nowhere:1", nil); err == nil || asked != 1 {
		t.Fatalf("CheckImage of an unknown image = %v after %d registry calls", err, asked)
	}
}

func TestCheckImageAsksWithCredentialsForItsRegistry(t *testing.T) {
	c := newImageCluster(t)
	var got []*runtime.RegistryAuth
	c.images.resolve = func(_ context.Context, _ string, auth *runtime.RegistryAuth) error {
		got = append(got, auth)
		return nil
	}
	const ref = "registry.example.com:5000/app:1"
	cases := []struct {
		name string
		auth *api.RegistryAuth
		want *runtime.RegistryAuth
	}{
		{"none", nil, nil},
		{"for the image's registry", &api.RegistryAuth{Server: "registry.example.com:5000", Username: "u", Password: "p"}, &runtime.RegistryAuth{Username: "u", Password: "p"}},
		{"for another registry", &api.RegistryAuth{Server: "docker.io", Username: "u", Password: "p"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			if err := c.images.CheckImage(context.Background(), ref, tc.auth); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || (got[0] == nil) != (tc.want == nil) || (got[0] != nil && *got[0] != *tc.want) {
				t.Fatalf("the registry was asked with %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRegistryRefusalIsTold(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"401", remoteserrors.ErrUnexpectedStatus{Status: "401 Unauthorized", StatusCode: 401}, true},
		{"403", fmt.Errorf("resolve: %w", remoteserrors.ErrUnexpectedStatus{Status: "403 Forbidden", StatusCode: 403}), true},
		{"credentials refused", fmt.Errorf("pull access denied: %w", docker.ErrInvalidAuthorization), true},
		{"500", remoteserrors.ErrUnexpectedStatus{Status: "500", StatusCode: 500}, false},
		{"unreachable", errors.New("connection refused"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := registryRefused(tc.err); got != tc.want {
				t.Fatalf("registryRefused(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
