package apiserver

import (
	"context"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
)

// Backuper writes a backup of the whole cluster: the manager.
type Backuper interface {
	Backup(ctx context.Context, w io.Writer) error
}

// backupChunkSize keeps each message far below gRPC's 4 MiB default limit.
const backupChunkSize = 256 << 10

// BackupCluster streams, in chunks, the backup the manager writes. Codes:
// Unavailable when the manager cannot reach the leader (or makes no
// backups), FailedPrecondition when it holds no root key, Internal else.
// A stream that ends in an error carried a partial backup: the client
// must drop what it received.
func (s *Server) BackupCluster(_ *api.BackupClusterRequest, stream grpc.ServerStreamingServer[api.BackupChunk]) error {
	if s.cfg.Backup == nil {
		return status.Error(codes.Unavailable, "this manager cannot make backups")
	}
	w := &chunkWriter{send: func(b []byte) error { return stream.Send(&api.BackupChunk{Data: b}) }}
	err := s.cfg.Backup.Backup(stream.Context(), w)
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		s.log.Warn("backup failed", "err", err, "bytes.sent", w.sent)
		return toStatus(err)
	}
	s.log.Info("backup sent", "bytes", w.sent)
	return nil
}

// chunkWriter sends what is written in messages of backupChunkSize.
type chunkWriter struct {
	send func([]byte) error
	buf  []byte
	sent int64
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, backupChunkSize)
		}
		k := min(backupChunkSize-len(w.buf), len(p))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == backupChunkSize {
			if err := w.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// flush sends what is buffered. A sent buffer is never reused: gRPC may
// still hold the message.
func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.send(w.buf); err != nil {
		return err
	}
	w.sent += int64(len(w.buf))
	w.buf = nil
	return nil
}
