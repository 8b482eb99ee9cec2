package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// readTar returns the regular files of a tar by name, and the headers of all entries.
func readTar(t *testing.T, r io.Reader) (map[string][]byte, map[string]*tar.Header) {
	t.Helper()
	files, headers := map[string][]byte{}, map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, headers
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		headers[h.Name] = h
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = data
		}
	}
}

func blob(t *testing.T, files map[string][]byte, d ocispec.Descriptor) []byte {
	t.Helper()
	data, ok := files["blobs/sha256/"+d.Digest.Encoded()]
	if !ok {
		t.Fatalf("blob %s missing", d.Digest)
	}
	if int64(len(data)) != d.Size {
		t.Fatalf("blob %s: size %d, descriptor says %d", d.Digest, len(data), d.Size)
	}
	return data
}

func TestBuild(t *testing.T) {
	files := []File{
		{Path: "/bin/tool", Mode: 0o755, Content: []byte("#!/bin/sh\necho hi\n")},
		{Path: "bin/alias", Linkname: "tool"},
		{Path: "/tmp", Mode: os.ModeDir | os.ModeSticky | 0o777},
		{Path: "/etc/deep/nested/file", Content: []byte("x")},
	}
	cfg := Config{
		Entrypoint: []string{"/bin/tool"},
		Cmd:        []string{"arg"},
		Env:        []string{"PATH=/bin", "A=b"},
		WorkingDir: "/tmp",
		User:       "nobody",
	}
	var buf bytes.Buffer
	if err := Build(&buf, "example.com/test/img:v1", files, cfg); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := Build(&again, "example.com/test/img:v1", files, cfg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two builds of the same input differ")
	}

	out, _ := readTar(t, bytes.NewReader(buf.Bytes()))
	for name, data := range out {
		if enc, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			if got := digest.FromBytes(data).Encoded(); got != enc {
				t.Errorf("blob %s has digest %s", enc, got)
			}
		}
	}
	var layout ocispec.ImageLayout
	if err := json.Unmarshal(out["oci-layout"], &layout); err != nil || layout.Version != "1.0.0" {
		t.Fatalf("oci-layout = %s (%v)", out["oci-layout"], err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(out["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index has %d manifests", len(index.Manifests))
	}
	md := index.Manifests[0]
	if got := md.Annotations[AnnotationImageName]; got != "example.com/test/img:v1" {
		t.Errorf("%s = %q", AnnotationImageName, got)
	}
	if got := md.Annotations[ocispec.AnnotationRefName]; got != "v1" {
		t.Errorf("%s = %q", ocispec.AnnotationRefName, got)
	}
	if md.Platform == nil || md.Platform.OS != "linux" || md.Platform.Architecture != runtime.GOARCH {
		t.Errorf("platform = %+v", md.Platform)
	}
	var manifest ocispec.Manifest
	if err := json.Unmarshal(blob(t, out, md), &manifest); err != nil {
		t.Fatal(err)
	}
	if manifest.MediaType != ocispec.MediaTypeImageManifest || len(manifest.Layers) != 1 {
		t.Fatalf("manifest = %+v", manifest)
	}
	var img ocispec.Image
	if err := json.Unmarshal(blob(t, out, manifest.Config), &img); err != nil {
		t.Fatal(err)
	}
	if img.OS != "linux" || img.Architecture != runtime.GOARCH {
		t.Errorf("config platform = %s/%s", img.OS, img.Architecture)
	}
	c := img.Config
	if strings.Join(c.Entrypoint, " ") != "/bin/tool" || strings.Join(c.Cmd, " ") != "arg" ||
		strings.Join(c.Env, ",") != "PATH=/bin,A=b" || c.WorkingDir != "/tmp" || c.User != "nobody" {
		t.Errorf("image config = %+v", c)
	}

	gz, err := gzip.NewReader(bytes.NewReader(blob(t, out, manifest.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	layerTar, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.RootFS.DiffIDs) != 1 || img.RootFS.DiffIDs[0] != digest.FromBytes(layerTar) {
		t.Errorf("diff IDs %v do not match the layer %s", img.RootFS.DiffIDs, digest.FromBytes(layerTar))
	}
	lf, lh := readTar(t, bytes.NewReader(layerTar))
	if string(lf["bin/tool"]) != "#!/bin/sh\necho hi\n" || lh["bin/tool"].Mode != 0o755 {
		t.Errorf("bin/tool = %q mode %o", lf["bin/tool"], lh["bin/tool"].Mode)
	}
	if h := lh["bin/alias"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "tool" {
		t.Errorf("bin/alias = %+v", h)
	}
	if h := lh["tmp/"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o1777 {
		t.Errorf("tmp/ = %+v", h)
	}
	for _, d := range []string{"bin/", "etc/", "etc/deep/", "etc/deep/nested/"} {
		if h := lh[d]; h == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o755 {
			t.Errorf("parent dir %s = %+v", d, h)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		ref   string
		files []File
	}{
		"bad ref":       {ref: "UPPER"},
		"duplicate":     {ref: "x", files: []File{{Path: "/a"}, {Path: "a"}}},
		"file parent":   {ref: "x", files: []File{{Path: "/a"}, {Path: "/a/b"}}},
		"missing src":   {ref: "x", files: []File{{Path: "/a", SourcePath: "/nonexistent/file"}}},
		"root as entry": {ref: "x", files: []File{{Path: "/"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := Build(io.Discard, tc.ref, tc.files, Config{}); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestBuildDigestRef(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	var buf bytes.Buffer
	if err := Build(&buf, "busybox@"+dg, nil, Config{}); err != nil {
		t.Fatal(err)
	}
	out, _ := readTar(t, &buf)
	var index ocispec.Index
	if err := json.Unmarshal(out["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	want := "docker.io/library/busybox@" + dg
	if got := index.Manifests[0].Annotations[AnnotationImageName]; got != want {
		t.Fatalf("name = %q, want %q", got, want)
	}
}

func TestBusyboxFiles(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox binary on PATH (Debian: apt-get install busybox-static)")
	}
	files, err := BusyboxFiles(bb)
	if err != nil {
		if strings.Contains(err.Error(), "dynamically linked") {
			t.Skipf("busybox is not static: %v", err)
		}
		t.Fatal(err)
	}
	byPath := map[string]File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	for _, a := range []string{"sh", "sleep", "httpd", "echo", "cat", "ls", "wget", "env", "pwd", "id"} {
		if f := byPath["/bin/"+a]; f.Linkname != "busybox" {
			t.Errorf("/bin/%s = %+v, want a symlink to busybox", a, f)
		}
	}
	if _, ok := byPath["/bin/busybox"]; !ok {
		t.Error("no /bin/busybox")
	}
	if !strings.Contains(string(byPath["/etc/passwd"].Content), "nobody:x:65534") {
		t.Error("/etc/passwd has no nobody")
	}
	if err := Build(io.Discard, "busybox:test", files, Config{Cmd: []string{"sh"}}); err != nil {
		t.Fatal(err)
	}
}

func TestBusyboxFilesRejectsDynamic(t *testing.T) {
	const dyn = "/bin/ls"
	data, err := os.ReadFile(dyn)
	if err != nil {
		t.Skipf("no %s", dyn)
	}
	if checkStatic(dyn, data) == nil {
		t.Skipf("%s is static here", dyn)
	}
	if _, err := BusyboxFiles(dyn); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("BusyboxFiles(%s) = %v, want a dynamically-linked error", dyn, err)
	}
}

func TestBuildHealthcheck(t *testing.T) {
	var buf bytes.Buffer
	hc := &Healthcheck{Test: []string{"CMD-SHELL", "wget -q -O- localhost"}, Interval: 2 * time.Second, Retries: 4}
	if err := Build(&buf, "busybox:hc", nil, Config{Cmd: []string{"sh"}, Healthcheck: hc}); err != nil {
		t.Fatal(err)
	}
	out, _ := readTar(t, &buf)
	var index ocispec.Index
	if err := json.Unmarshal(out["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	var manifest ocispec.Manifest
	if err := json.Unmarshal(blob(t, out, index.Manifests[0]), &manifest); err != nil {
		t.Fatal(err)
	}
	raw := blob(t, out, manifest.Config)
	var doc struct {
		Config struct {
			Cmd         []string
			Healthcheck map[string]any
		} `json:"config"`
		OS string `json:"os"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	h := doc.Config.Healthcheck
	if doc.OS != "linux" || len(doc.Config.Cmd) != 1 || h["Interval"] != float64(2e9) || h["Retries"] != float64(4) ||
		fmt.Sprint(h["Test"]) != "[CMD-SHELL wget -q -O- localhost]" {
		t.Fatalf("config = %s", raw)
	}
	if strings.Count(string(raw), `"config"`) != 1 {
		t.Fatalf("config written twice: %s", raw)
	}
}
