package backupfile

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/internal/version"
)

// Write encodes b to w and returns the manifest it wrote. It refuses
// contents that could not be restored (see the package comment), so a
// backup that was written can be read back.
func Write(w io.Writer, b *Backup) (*Manifest, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	state, err := proto.Marshal(b.State)
	if err != nil {
		return nil, fmt.Errorf("backup: encode the state: %w", err)
	}
	data := map[string][]byte{MemberState: state, MemberCACert: b.CACert, MemberCAKey: b.CAKey, MemberDataKey: b.DataKey}
	man := manifestOf(b, data)
	raw, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("backup: encode the manifest: %w", err)
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	if err := writeMember(tw, MemberManifest, append(raw, '\n'), man.CreatedAt); err != nil {
		return nil, err
	}
	for _, m := range members {
		if err := writeMember(tw, m.name, data[m.name], man.CreatedAt); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("backup: finish the archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("backup: finish the archive: %w", err)
	}
	return man, nil
}

func manifestOf(b *Backup, data map[string][]byte) *Manifest {
	cluster, _ := ClusterOf(b.State) // check made sure there is one
	man := &Manifest{
		FormatVersion: FormatVersion,
		ClusterID:     cluster.GetId(),
		CreatedAt:     b.CreatedAt.UTC().Round(time.Second),
		WarrenVersion: b.WarrenVersion,
		StateIndex:    b.State.GetIndex(),
		Nodes:         len(b.State.GetNodes()),
		Services:      len(b.State.GetServices()),
		Tasks:         len(b.State.GetTasks()),
		SHA256:        map[string]string{},
	}
	if b.CreatedAt.IsZero() {
		man.CreatedAt = time.Now().UTC().Round(time.Second)
	}
	if man.WarrenVersion == "" {
		man.WarrenVersion = version.Version
	}
	for name, d := range data {
		man.SHA256[name] = sum(d)
	}
	return man
}

func writeMember(tw *tar.Writer, name string, data []byte, mod time.Time) error {
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(data)), ModTime: mod}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("backup: write %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("backup: write %s: %w", name, err)
	}
	return nil
}

func sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}
