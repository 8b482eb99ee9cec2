package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/warren-project/warren/api"
)

// chunkStream plays a FetchImage stream: its chunks, then err (io.EOF for
// a clean end).
type chunkStream struct {
	grpc.ClientStream
	chunks []string
	err    error
}

func (s *chunkStream) Recv() (*api.FetchImageChunk, error) {
	if len(s.chunks) == 0 {
		return nil, s.err
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return &api.FetchImageChunk{Data: []byte(c)}, nil
}

func TestArchiveReaderChecksWhatArrives(t *testing.T) {
	const data = "docker.io/library/app:1\n"
	sum := sha256.Sum256([]byte(data))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	cases := []struct {
		name    string
		chunks  []string
		end     error
		digest  string
		size    int64
		wantErr string // empty: the whole archive, then io.EOF
	}{
		{"whole", []string{data[:5], "", data[5:]}, io.EOF, digest, int64(len(data)), ""},
		{"damaged", []string{strings.ToUpper(data)}, io.EOF, digest, int64(len(data)), "arrived damaged"},
		{"cut short", []string{data[:5]}, io.EOF, digest, int64(len(data)), "arrived damaged"},
		{"stream broke", []string{data[:5]}, errors.New("connection reset"), digest, int64(len(data)), "connection reset"},
		{"size differs", []string{data}, io.EOF, digest, 3, "want 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := newArchiveReader(&chunkStream{chunks: c.chunks, err: c.end}, c.digest, c.size)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			switch {
			case c.wantErr == "" && (err != nil || string(got) != data):
				t.Fatalf("read %q, %v; want the archive", got, err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("read error %v, want one saying %q", err, c.wantErr)
			}
			if _, again := r.Read(make([]byte, 1)); (again == io.EOF) != (c.wantErr == "") {
				t.Fatalf("a second read at the end gives %v", again)
			}
		})
	}
	if _, err := newArchiveReader(&chunkStream{}, "md5:abc", 0); err == nil {
		t.Fatal("a non-sha256 digest was accepted")
	}
}
