package h1

import (
	"bufio"
	"io"
	"net/http"
)

// Encoding is how CopyBody writes a body.
type Encoding uint8

// The encodings.
const (
	// Raw writes the body bytes as they are (a Content-Length body, or
	// one delimited by closing the connection).
	Raw Encoding = iota
	// Chunk writes the body in chunked coding, then the last chunk, the
	// trailer fields that Keep accepts, and the final CRLF.
	Chunk
)

// CopyBody copies body to w with the given encoding, streaming: whenever
// the source has nothing buffered, what w holds is flushed before waiting
// for more. keep, if not nil, says which trailer fields to pass on (Chunk
// only; nil passes none). It returns the first error; a read error is
// returned as is, a write error wrapped in *WriteError.
func CopyBody(w *bufio.Writer, body *Body, enc Encoding, keep func(*Field) bool) error {
	body.flush = w
	defer func() { body.flush = nil }()
	for {
		p, err := body.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if enc == Chunk {
			writeChunkHeader(w, len(p))
		}
		if _, err := w.Write(p); err != nil {
			return &WriteError{err}
		}
		body.Consume(len(p))
		if enc == Chunk {
			w.WriteString("\r\n")
		}
	}
	if enc == Chunk {
		w.WriteString("0\r\n")
		if keep != nil {
			for i := range body.trailer.Fields {
				if f := &body.trailer.Fields[i]; keep(f) {
					WriteField(w, f.Name, f.Value)
				}
			}
		}
		if _, err := w.WriteString("\r\n"); err != nil {
			return &WriteError{err}
		}
	}
	return nil
}

// WriteError is an error writing to the destination of a copy.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "write: " + e.Err.Error() }

// Unwrap returns the write's error.
func (e *WriteError) Unwrap() error { return e.Err }

func writeChunkHeader(w *bufio.Writer, n int) {
	writeUint(w, uint64(n), 16)
	w.WriteString("\r\n")
}

// writeUint writes n in base 10 or 16 byte by byte: a slice handed to
// Write would escape, and cost an allocation per call.
func writeUint(w *bufio.Writer, n uint64, base uint64) {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = "0123456789abcdef"[n%base]
		if n /= base; n == 0 {
			break
		}
	}
	for _, c := range b[i:] {
		w.WriteByte(c)
	}
}

// WriteField writes "name: value\r\n".
func WriteField(w *bufio.Writer, name, value []byte) {
	w.Write(name)
	w.WriteString(": ")
	w.Write(value)
	w.WriteString("\r\n")
}

// WriteStatusLine writes "HTTP/1.x code reason\r\n"; an empty reason is
// replaced by the standard one.
func WriteStatusLine(w *bufio.Writer, minor int, code int, reason []byte) {
	if minor == 0 {
		w.WriteString("HTTP/1.0 ")
	} else {
		w.WriteString("HTTP/1.1 ")
	}
	writeUint(w, uint64(code), 10)
	w.WriteByte(' ')
	if len(reason) > 0 {
		w.Write(reason)
	} else {
		w.WriteString(StatusText(code))
	}
	w.WriteString("\r\n")
}

// StatusText is the standard reason phrase of code, or "Unknown".
func StatusText(code int) string {
	if s := http.StatusText(code); s != "" {
		return s
	}
	return "Unknown"
}

// WriteInt writes n, which must not be negative, in decimal.
func WriteInt(w *bufio.Writer, n int64) {
	writeUint(w, uint64(n), 10)
}
