package ajp

import (
	"fmt"
	"io"
	"net/http"
	"sync"
)

// body is a request body arriving in chunks: the first one unasked after
// a request with a Content-Length, the others each asked for with a Get
// Body Chunk packet. Reads are serialized; after the handler returns the
// body is closed, so that a goroutine the handler left behind cannot
// interleave packets with the next request's.
type body struct {
	c *conn

	mu        sync.Mutex
	remaining int64  // bytes still to come if the length is known, else -1
	limit     int64  // MaxBodyBytes; negative: none
	total     int64  // bytes received
	buf       []byte // received, not yet read (aliases c.rbuf)
	eof       bool
	err       error
	closed    bool
}

// Read reads the body; it returns io.EOF at its end, io.ErrUnexpectedEOF
// if the web server ended it short of its Content-Length (the client went
// away), and *http.MaxBytesError past Options.MaxBodyBytes.
func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	for len(b.buf) == 0 {
		switch {
		case b.err != nil:
			return 0, b.err
		case b.eof:
			return 0, io.EOF
		}
		b.fetch(true)
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

// Close makes further reads fail; the unread rest of the body is left to
// the web server, which discards it.
func (b *body) Close() error {
	b.close()
	return nil
}

func (b *body) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.buf = nil
}

// fetch receives the next chunk, asking for it first if ask is set;
// b.mu must be held. It sets b.buf, b.eof or b.err.
func (b *body) fetch(ask bool) {
	c := b.c
	if b.remaining == 0 {
		b.end()
		return
	}
	if ask {
		n := c.s.o.PacketSize - headerLen - 2
		if b.remaining > 0 && b.remaining < int64(n) {
			n = int(b.remaining)
		}
		if err := c.send(func(p []byte) []byte { return appendGetBodyChunk(p, n) }, true); err != nil {
			b.err = err
			return
		}
	}
	c.setReadDeadline(c.s.o.ReadTimeout)
	p, err := readPacket(c.br, c.rbuf, c.s.o.PacketSize)
	var data []byte
	if err == nil {
		data, err = decodeBodyChunk(p)
	}
	if err == nil && b.remaining >= 0 && int64(len(data)) > b.remaining {
		err = badPacket("body chunk of %d bytes, %d expected at most", len(data), b.remaining)
	}
	if err != nil {
		c.broken.Store(true)
		b.err = fmt.Errorf("ajp: reading request body: %w", err)
		c.s.log.Warn("ajp: bad request body; connection closed after the response", "remote", c.remote(), "err", err)
		return
	}
	if len(data) == 0 {
		if b.remaining > 0 {
			b.err = io.ErrUnexpectedEOF
			return
		}
		b.end()
		return
	}
	b.total += int64(len(data))
	if b.limit >= 0 && b.total > b.limit {
		b.err = &http.MaxBytesError{Limit: b.limit}
		return
	}
	if b.remaining > 0 {
		b.remaining -= int64(len(data))
	}
	b.buf = data
	if b.remaining == 0 {
		b.end()
	}
}

// end marks the body complete: nothing more will be read for this
// request, so the connection can be watched for a hang-up.
func (b *body) end() {
	if !b.eof {
		b.eof = true
		b.c.startBackgroundRead()
	}
}
