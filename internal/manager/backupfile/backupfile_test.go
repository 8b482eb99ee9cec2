package backupfile

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
)

// testBackup is a small but complete backup of a cluster.
func testBackup(t *testing.T) *Backup {
	t.Helper()
	root, err := ca.Generate("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := root.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return &Backup{
		CreatedAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), WarrenVersion: "1.0.0-test",
		State: &api.StoreSnapshot{
			Format: 1, Index: 42,
			Clusters: []*api.Cluster{{Id: "c1", Name: "warren", CaFingerprint: root.Fingerprint(),
				JoinSecrets: &api.JoinSecrets{Worker: "w", Manager: "m"}}},
			Nodes:    []*api.Node{{Id: "n1"}, {Id: "n2"}},
			Services: []*api.Service{{Id: "s1", Spec: &api.ServiceSpec{Name: "web"}}},
			Tasks:    []*api.Task{{Id: "t1"}, {Id: "t2"}, {Id: "t3"}},
		},
		CACert: root.CertPEM(), CAKey: key, DataKey: bytes.Repeat([]byte{7}, 32),
	}
}

func encode(t *testing.T, b *Backup) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Write(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	in := testBackup(t)
	var buf bytes.Buffer
	wrote, err := Write(&buf, in)
	if err != nil {
		t.Fatal(err)
	}
	out, man, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(out.State, in.State) {
		t.Fatalf("state read back differs:\n%v\nwant\n%v", out.State, in.State)
	}
	for name, pair := range map[string][2][]byte{
		"ca.crt": {out.CACert, in.CACert}, "ca.key": {out.CAKey, in.CAKey}, "data.key": {out.DataKey, in.DataKey},
	} {
		if !bytes.Equal(pair[0], pair[1]) {
			t.Errorf("%s read back differs", name)
		}
	}
	want := Manifest{FormatVersion: 1, ClusterID: "c1", CreatedAt: in.CreatedAt, WarrenVersion: "1.0.0-test",
		StateIndex: 42, Nodes: 2, Services: 1, Tasks: 3}
	got := *man
	got.SHA256 = nil
	if !got.CreatedAt.Equal(want.CreatedAt) || got.FormatVersion != want.FormatVersion || got.ClusterID != want.ClusterID ||
		got.WarrenVersion != want.WarrenVersion || got.StateIndex != want.StateIndex ||
		got.Nodes != want.Nodes || got.Services != want.Services || got.Tasks != want.Tasks {
		t.Fatalf("manifest = %+v, want %+v", got, want)
	}
	if len(man.SHA256) != 4 || man.SHA256[MemberState] != wrote.SHA256[MemberState] {
		t.Fatalf("checksums read back %v, written %v", man.SHA256, wrote.SHA256)
	}
}

// member is one file of a hand-made archive.
type member struct {
	name string
	data []byte
}

// rawArchive builds an archive member by member, the manifest first,
// with checksums of the members as given: for files Write never makes.
func rawArchive(t *testing.T, man Manifest, ms []member) []byte {
	t.Helper()
	if man.SHA256 == nil {
		man.SHA256 = map[string]string{}
		for _, m := range ms {
			man.SHA256[m.name] = sum(m.data)
		}
	}
	raw, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, m := range append([]member{{MemberManifest, raw}}, ms...) {
		if err := writeMember(tw, m.name, m.data, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// partsOf returns the members Write would make of b, with a minimal
// manifest (version "test", no counts, time or checksums).
func partsOf(t *testing.T, b *Backup) (Manifest, []member) {
	t.Helper()
	state, err := proto.Marshal(b.State)
	if err != nil {
		t.Fatal(err)
	}
	ms := []member{{MemberState, state}, {MemberCACert, b.CACert}, {MemberCAKey, b.CAKey}, {MemberDataKey, b.DataKey}}
	man := Manifest{FormatVersion: 1, ClusterID: "c1", StateIndex: 42, WarrenVersion: "test"}
	return man, ms
}

// A byte changed inside a member (with the compression intact) is caught
// by that member's checksum, and the error names it.
func TestCorruptMemberIsNamed(t *testing.T) {
	b := testBackup(t)
	for i := range 4 {
		man, ms := partsOf(t, b)
		name := ms[i].name
		t.Run(name, func(t *testing.T) {
			man.SHA256 = map[string]string{}
			for _, m := range ms {
				man.SHA256[m.name] = sum(m.data)
			}
			bad := bytes.Clone(ms[i].data)
			bad[len(bad)/2] ^= 0x01
			ms[i].data = bad
			_, _, err := Read(bytes.NewReader(rawArchive(t, man, ms)))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "member "+name) {
				t.Fatalf("err = %v; want ErrCorrupt naming member %s", err, name)
			}
		})
	}
}

// A byte changed in the compressed file is refused, wherever it falls.
func TestCorruptFileRefused(t *testing.T) {
	good := encode(t, testBackup(t))
	// Past gzip's 10-byte header, whose time and OS fields no checksum covers.
	for _, at := range []int{10, 200, len(good) / 2, len(good) - 300, len(good) - 8, len(good) - 1} {
		bad := bytes.Clone(good)
		bad[at] ^= 0xff
		_, _, err := Read(bytes.NewReader(bad))
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("byte %d of %d changed: err = %v; want ErrCorrupt", at, len(good), err)
		}
	}
}

func TestTruncatedRefused(t *testing.T) {
	good := encode(t, testBackup(t))
	for _, n := range []int{0, 5, 20, 600, len(good) / 2, len(good) - 9, len(good) - 1} {
		_, _, err := Read(bytes.NewReader(good[:n]))
		switch {
		case err == nil:
			t.Errorf("cut to %d of %d bytes: accepted", n, len(good))
		case n > 20 && (!errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated")):
			t.Errorf("cut to %d of %d bytes: err = %v; want ErrCorrupt saying it is truncated", n, len(good), err)
		}
	}
}

func TestBadArchivesRefused(t *testing.T) {
	b := testBackup(t)
	other, err := ca.Generate("other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := other.KeyPEM()
	gzipped := func(s string) []byte {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		gz.Write([]byte(s))
		gz.Close()
		return buf.Bytes()
	}
	tests := []struct {
		name   string
		file   func() []byte
		target error
		want   string
	}{
		{"empty file", func() []byte { return nil }, ErrNotBackup, "empty"},
		{"plain text", func() []byte { return []byte("hello, not a backup\n") }, ErrNotBackup, "not gzip"},
		{"gzip of a text", func() []byte { return gzipped(strings.Repeat("hello\n", 200)) }, ErrNotBackup, "no tar"},
		{"tar without manifest", func() []byte {
			man, ms := partsOf(t, b)
			raw := rawArchive(t, man, ms)
			return rewriteFirstName(t, raw, "notes.txt")
		}, ErrNotBackup, `first member is "notes.txt"`},
		{"newer format", func() []byte {
			man, ms := partsOf(t, b)
			man.FormatVersion = 2
			return rawArchive(t, man, ms)
		}, ErrUnsupportedVersion, "format version 2"},
		{"missing member", func() []byte {
			man, ms := partsOf(t, b)
			return rawArchive(t, man, ms[:3])
		}, ErrCorrupt, "member data.key is missing"},
		{"unexpected member", func() []byte {
			man, ms := partsOf(t, b)
			return rawArchive(t, man, append(ms, member{"extra", []byte("x")}))
		}, ErrCorrupt, `unexpected member "extra"`},
		{"key of another CA", func() []byte {
			man, ms := partsOf(t, b)
			ms[2].data = otherKey
			return rawArchive(t, man, ms)
		}, ErrInconsistent, "does not match"},
		{"manifest of another cluster", func() []byte {
			man, ms := partsOf(t, b)
			man.ClusterID = "c2"
			return rawArchive(t, man, ms)
		}, ErrInconsistent, "cluster c2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Read(bytes.NewReader(tt.file()))
			if !errors.Is(err, tt.target) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want %v containing %q", err, tt.target, tt.want)
			}
		})
	}
}

// rewriteFirstName renames an archive's first member.
func rewriteFirstName(t *testing.T, archive []byte, name string) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var buf bytes.Buffer
	out := gzip.NewWriter(&buf)
	tw := tar.NewWriter(out)
	for first := true; ; first = false {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		if first {
			hdr.Name = name
		}
		tw.WriteHeader(hdr)
		var data bytes.Buffer
		data.ReadFrom(tr)
		tw.Write(data.Bytes())
	}
	tw.Close()
	out.Close()
	return buf.Bytes()
}

// Write refuses what could not be restored.
func TestWriteRefusesBadContents(t *testing.T) {
	other, err := ca.Generate("other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := other.KeyPEM()
	tests := []struct {
		name   string
		change func(*Backup)
		want   string
	}{
		{"key of another CA", func(b *Backup) { b.CAKey = otherKey }, "does not match"},
		{"no cluster", func(b *Backup) { b.State.Clusters = nil }, "0 cluster objects"},
		{"short data key", func(b *Backup) { b.DataKey = []byte("short") }, "data key is 5 bytes"},
		{"another CA's state", func(b *Backup) { b.State.Clusters[0].CaFingerprint = other.Fingerprint() }, "the state's CA is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBackup(t)
			tt.change(b)
			var buf bytes.Buffer
			_, err := Write(&buf, b)
			if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want ErrInconsistent containing %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes written for a refused backup", buf.Len())
			}
		})
	}
}
