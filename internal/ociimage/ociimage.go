// Package ociimage builds small single-layer OCI images without a registry or
// a builder: Build writes an OCI image-layout tar that containerd's import
// (and skopeo, podman, docker 25+) read. Tests and hack/mkimage use it to make
// a busybox image on machines with no network.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // go-digest needs the hash registered
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// AnnotationImageName is the index annotation containerd's import names
// images by (containerd's images.AnnotationImageName).
const AnnotationImageName = "io.containerd.image.name"

// File is one entry of the image's only layer.
type File struct {
	Path string      // absolute path in the image, e.g. "/bin/sh"
	Mode os.FileMode // permission bits, plus os.ModeDir for a directory (and os.ModeSticky etc.); 0 means 0644/0755
	// Content is the file's data; when nil, SourcePath names a host file to copy.
	Content    []byte
	SourcePath string
	Linkname   string // when set, the entry is a symlink to Linkname
	UID, GID   int
}

// Config is the part of the OCI image config a caller chooses.
type Config struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // KEY=VALUE; containerd adds a default PATH when empty
	WorkingDir string
	User       string
	Labels     map[string]string
	// Healthcheck, when set, is written as Docker's HEALTHCHECK ("Healthcheck"
	// in the config), which the OCI types do not have.
	Healthcheck *Healthcheck
	// Created is written in the config and as the files' mtime; zero means
	// the Unix epoch, so the same input always gives the same digests.
	Created time.Time
}

// Build writes to w an OCI image-layout tar holding one image named ref
// (normalized, e.g. "busybox" -> "docker.io/library/busybox:latest") for
// linux/GOARCH, made of files and cfg. Parent directories missing from files
// are added with mode 0755.
func Build(w io.Writer, ref string, files []File, cfg Config) error {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return fmt.Errorf("ociimage: invalid reference %q: %w", ref, err)
	}
	created := cfg.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()

	layerTar, err := layer(files, created)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(layerTar); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}

	blobs := map[digest.Digest][]byte{}
	add := func(mediaType string, data []byte) ocispec.Descriptor {
		d := digest.FromBytes(data)
		blobs[d] = data
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
	}
	layerDesc := add(ocispec.MediaTypeImageLayerGzip, gz.Bytes())

	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	img := ocispec.Image{
		Created:  &created,
		Platform: platform,
		Config: ocispec.ImageConfig{
			User:       cfg.User,
			Env:        cfg.Env,
			Entrypoint: cfg.Entrypoint,
			Cmd:        cfg.Cmd,
			WorkingDir: cfg.WorkingDir,
			Labels:     cfg.Labels,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(layerTar)}},
		History: []ocispec.History{{
			Created:   &created,
			CreatedBy: "warren ociimage.Build",
		}},
	}
	configJSON, err := marshalConfig(img, cfg.Healthcheck)
	if err != nil {
		return err
	}
	configDesc := add(ocispec.MediaTypeImageConfig, configJSON)

	manifestJSON, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	})
	if err != nil {
		return err
	}
	manifestDesc := add(ocispec.MediaTypeImageManifest, manifestJSON)
	manifestDesc.Platform = &platform
	manifestDesc.Annotations = map[string]string{
		AnnotationImageName:       named.String(),
		ocispec.AnnotationRefName: refName(named),
	}

	indexJSON, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{manifestDesc},
	})
	if err != nil {
		return err
	}
	layoutJSON, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}
	return writeLayout(w, created, layoutJSON, indexJSON, blobs)
}

// refName is the org.opencontainers.image.ref.name value: the tag, as
// docker and skopeo write it, or the full name for a digest-only reference.
func refName(named reference.Named) string {
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag()
	}
	return named.String()
}

func writeLayout(w io.Writer, mtime time.Time, layout, index []byte, blobs map[digest.Digest][]byte) error {
	tw := tar.NewWriter(w)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := file(ocispec.ImageLayoutFile, layout); err != nil {
		return err
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	keys := make([]digest.Digest, 0, len(blobs))
	for d := range blobs {
		keys = append(keys, d)
	}
	slices.Sort(keys)
	for _, d := range keys {
		if err := file("blobs/"+d.Algorithm().String()+"/"+d.Encoded(), blobs[d]); err != nil {
			return err
		}
	}
	// index.json last: some readers only act on it once the blobs are in.
	if err := file(ocispec.ImageIndexFile, index); err != nil {
		return err
	}
	return tw.Close()
}

// layer returns the uncompressed layer tar of files, sorted by path, with
// missing parent directories added.
func layer(files []File, mtime time.Time) ([]byte, error) {
	byPath := map[string]File{}
	for _, f := range files {
		p := path.Clean("/" + f.Path)
		if p == "/" {
			return nil, fmt.Errorf("ociimage: file path %q is the root", f.Path)
		}
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("ociimage: %s listed twice", p)
		}
		f.Path = p
		byPath[p] = f
	}
	for p := range byPath {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = File{Path: d, Mode: os.ModeDir | 0o755}
			} else if byPath[d].Mode&os.ModeDir == 0 {
				return nil, fmt.Errorf("ociimage: %s is a parent of %s but not a directory", d, p)
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	slices.Sort(paths)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		if err := writeEntry(tw, byPath[p], mtime); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeEntry(tw *tar.Writer, f File, mtime time.Time) error {
	h := &tar.Header{
		Name:    strings.TrimPrefix(f.Path, "/"),
		ModTime: mtime,
		Uid:     f.UID,
		Gid:     f.GID,
		Format:  tar.FormatPAX,
	}
	var data []byte
	switch {
	case f.Linkname != "":
		h.Typeflag, h.Linkname = tar.TypeSymlink, f.Linkname
		h.Mode = tarMode(f.Mode, 0o777)
	case f.Mode&os.ModeDir != 0:
		h.Typeflag = tar.TypeDir
		h.Name += "/"
		h.Mode = tarMode(f.Mode, 0o755)
	default:
		h.Typeflag = tar.TypeReg
		data = f.Content
		if data == nil && f.SourcePath != "" {
			var err error
			if data, err = os.ReadFile(f.SourcePath); err != nil {
				return fmt.Errorf("ociimage: %s: %w", f.Path, err)
			}
		}
		h.Size = int64(len(data))
		h.Mode = tarMode(f.Mode, 0o644)
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("ociimage: %s: %w", f.Path, err)
	}
	_, err := tw.Write(data)
	return err
}

// tarMode converts an os.FileMode's permission and special bits to tar's.
func tarMode(m os.FileMode, def int64) int64 {
	perm := int64(m.Perm())
	if perm == 0 {
		perm = def
	}
	if m&os.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		perm |= 0o1000
	}
	return perm
}

// Healthcheck is Docker's HEALTHCHECK in an image config: Test is ["NONE"],
// ["CMD", arg...] or ["CMD-SHELL", command]; durations are nanoseconds in
// JSON, as Docker writes them.
type Healthcheck struct {
	Test          []string      `json:",omitempty"`
	Interval      time.Duration `json:",omitempty"`
	Timeout       time.Duration `json:",omitempty"`
	StartPeriod   time.Duration `json:",omitempty"`
	StartInterval time.Duration `json:",omitempty"`
	Retries       int           `json:",omitempty"`
}

// marshalConfig encodes the image config, with Docker's Healthcheck inside
// its "config" when there is one. Without one the encoding is plain OCI, so
// the digests of images built before stay the same.
func marshalConfig(img ocispec.Image, hc *Healthcheck) ([]byte, error) {
	if hc == nil {
		return json.Marshal(img)
	}
	type dockerConfig struct {
		ocispec.ImageConfig
		Healthcheck *Healthcheck `json:"Healthcheck,omitempty"`
	}
	// The outer Config field hides the embedded one of the same JSON name.
	return json.Marshal(struct {
		ocispec.Image
		Config dockerConfig `json:"config"`
	}{Image: img, Config: dockerConfig{ImageConfig: img.Config, Healthcheck: hc}})
}
