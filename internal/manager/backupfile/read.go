package backupfile

import (
	"archive/tar"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

// ReadFile reads and checks the backup at path.
func ReadFile(path string) (*Backup, *Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return Read(f)
}

// Read decodes a backup and checks all of it (see the package comment)
// before it returns. Its errors wrap ErrNotBackup, ErrCorrupt,
// ErrUnsupportedVersion or ErrInconsistent, and name the member at fault.
func Read(r io.Reader) (*Backup, *Manifest, error) {
	gz, err := gzip.NewReader(r)
	if errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%w: the file is empty", ErrNotBackup)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: it is not gzip-compressed (%v)", ErrNotBackup, err)
	}
	gz.Multistream(false)
	tr := tar.NewReader(gz)
	man, err := readManifest(tr)
	if err != nil {
		return nil, nil, err
	}
	data, err := readMembers(tr, man)
	if err != nil {
		return nil, nil, err
	}
	// The tar reader may stop before gzip's trailer: read it, so that its
	// checksum and length are checked too.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, nil, damaged(err, "at the end of the archive")
	}
	b, err := decode(man, data)
	if err != nil {
		return nil, nil, err
	}
	return b, man, nil
}

func readManifest(tr *tar.Reader) (*Manifest, error) {
	hdr, err := tr.Next()
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, gzip.ErrChecksum), errors.As(err, &corrupt):
		return nil, damaged(err, "in "+MemberManifest)
	case err != nil:
		return nil, fmt.Errorf("%w: it holds no tar archive (%v)", ErrNotBackup, err)
	case hdr.Name != MemberManifest:
		return nil, fmt.Errorf("%w: its first member is %q, not %s", ErrNotBackup, hdr.Name, MemberManifest)
	}
	raw, err := readAll(tr, MemberManifest, maxManifest)
	if err != nil {
		return nil, err
	}
	var man Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return nil, fmt.Errorf("%w: %s cannot be decoded: %v", ErrCorrupt, MemberManifest, err)
	}
	if man.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("%w: the backup is format version %d (written by warren %s); this warren reads version %d: restore it with the warren version that wrote it",
			ErrUnsupportedVersion, man.FormatVersion, man.WarrenVersion, FormatVersion)
	}
	return &man, nil
}

// readMembers reads every member after the manifest, checking each one's
// checksum as it ends, and makes sure none is missing or unexpected.
func readMembers(tr *tar.Reader, man *Manifest) (map[string][]byte, error) {
	limits := map[string]int64{}
	for _, m := range members {
		limits[m.name] = m.max
	}
	data := map[string][]byte{}
	last := MemberManifest
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, damaged(err, "after member "+last)
		}
		name := hdr.Name
		max, known := limits[name]
		switch {
		case !known:
			return nil, fmt.Errorf("%w: unexpected member %q", ErrCorrupt, name)
		case data[name] != nil:
			return nil, fmt.Errorf("%w: member %s appears twice", ErrCorrupt, name)
		case hdr.Typeflag != tar.TypeReg:
			return nil, fmt.Errorf("%w: member %s is not a regular file", ErrCorrupt, name)
		}
		d, err := readAll(tr, name, max)
		if err != nil {
			return nil, err
		}
		if want := man.SHA256[name]; sum(d) != want {
			return nil, fmt.Errorf("%w: member %s does not match its checksum in %s (sha256 %s, want %q)", ErrCorrupt, name, MemberManifest, sum(d), want)
		}
		data[name] = d
		last = name
	}
	for _, m := range members {
		if data[m.name] == nil {
			return nil, fmt.Errorf("%w: member %s is missing (is the file truncated?)", ErrCorrupt, m.name)
		}
	}
	return data, nil
}

func readAll(r io.Reader, name string, max int64) ([]byte, error) {
	d, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, damaged(err, "in member "+name)
	}
	if int64(len(d)) > max {
		return nil, fmt.Errorf("%w: member %s is larger than %d bytes", ErrCorrupt, name, max)
	}
	return d, nil
}

// damaged explains a read error met where it says ("in member X").
func damaged(err error, where string) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: it ends early (%s): the file is truncated", ErrCorrupt, where)
	case errors.Is(err, gzip.ErrChecksum):
		return fmt.Errorf("%w: the compressed data's checksum does not match (%s)", ErrCorrupt, where)
	case errors.As(err, &corrupt), errors.Is(err, gzip.ErrHeader), errors.Is(err, tar.ErrHeader):
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, where, err)
	}
	return fmt.Errorf("read the backup (%s): %w", where, err)
}

// decode turns intact members into a Backup, and checks that they belong
// together and to the manifest.
func decode(man *Manifest, data map[string][]byte) (*Backup, error) {
	var state api.StoreSnapshot
	if err := proto.Unmarshal(data[MemberState], &state); err != nil {
		return nil, fmt.Errorf("%w: member %s cannot be decoded: %v", ErrCorrupt, MemberState, err)
	}
	b := &Backup{
		CreatedAt: man.CreatedAt, WarrenVersion: man.WarrenVersion, State: &state,
		CACert: data[MemberCACert], CAKey: data[MemberCAKey], DataKey: data[MemberDataKey],
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	cluster, _ := ClusterOf(&state)
	if cluster.GetId() != man.ClusterID || state.GetIndex() != man.StateIndex {
		return nil, fmt.Errorf("%w: the manifest names cluster %s at index %d, the state holds cluster %s at index %d",
			ErrInconsistent, man.ClusterID, man.StateIndex, cluster.GetId(), state.GetIndex())
	}
	return b, nil
}
