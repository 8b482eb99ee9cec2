package logfile

import (
	"bytes"
	"errors"
	"io"
)

// copyBufSize is how much of a stream one read takes: a chatty container's
// lines are written in batches of up to this much, one write each.
const copyBufSize = 32 << 10

// Copy writes what r yields to w as records of stream, one per line, until
// r ends. Lines longer than MaxLineSize are split; an unterminated end is
// kept as a partial record. A failed write loses those lines but not the
// stream: Copy goes on reading, because a writer that stopped reading would
// block the container on a full pipe. It returns the first write error.
func Copy(w *Writer, stream string, r io.Reader) error {
	buf := make([]byte, copyBufSize)
	var carry []byte // the start of a line whose newline has not come yet
	var lines []Line
	var firstErr error
	for {
		n, rerr := r.Read(buf)
		data := buf[:n]
		if len(carry) > 0 {
			carry = append(carry, data...)
			data = carry
		}
		lines = lines[:0]
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			lines = splitLine(lines, data[:i])
			data = data[i+1:]
		}
		for len(data) > MaxLineSize {
			lines = append(lines, Line{Text: data[:MaxLineSize], Partial: true})
			data = data[MaxLineSize:]
		}
		if rerr != nil && len(data) > 0 {
			lines = append(lines, Line{Text: data, Partial: true})
			data = nil
		}
		if len(lines) > 0 {
			if err := w.WriteLines(stream, lines); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		// Written lines were copied out by the encoder: the rest may move.
		carry = append(carry[:0], data...)
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return firstErr
			}
			return errors.Join(firstErr, rerr)
		}
	}
}

// splitLine appends a whole line, in MaxLineSize pieces when it is longer.
func splitLine(lines []Line, line []byte) []Line {
	for len(line) > MaxLineSize {
		lines = append(lines, Line{Text: line[:MaxLineSize], Partial: true})
		line = line[MaxLineSize:]
	}
	return append(lines, Line{Text: line})
}
