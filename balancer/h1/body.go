package h1

import (
	"bufio"
	"bytes"
	"io"
)

// maxChunkLine caps a chunk-size line, extensions included (net/http's
// limit too).
const maxChunkLine = 4096

// Body reads a message body of any framing from a bufio.Reader without
// copying it: Next returns the body bytes that are in the reader's
// buffer, Consume takes them out. Chunked framing is checked as strictly
// as the head and removed; the trailer fields are kept. Reuse a Body for
// every message of a connection.
type Body struct {
	br      *bufio.Reader
	framing Framing
	left    int64 // Length: bytes left; Chunked: left in the chunk
	state   chunkState
	excess  int64 // chunk framing beyond what the data pays for
	n       int64 // body bytes consumed
	limit   int64 // most body bytes allowed, 0 for no limit
	err     error
	// flush, if set, is flushed before any wait for more input, so that
	// what was copied so far goes on while the source is silent.
	flush   *bufio.Writer
	lim     Limits
	trailer head
	ends    []int
}

type chunkState uint8

const (
	chunkSize    chunkState = iota // at a chunk-size line
	chunkData                      // inside a chunk's data
	chunkEnd                       // at the CRLF after a chunk's data
	chunkTrailer                   // in the trailer section
	chunkDone                      // after the trailer section
)

// Reset starts reading a body of the given framing from br; length is the
// Content-Length for Length. lim bounds the trailer section.
func (b *Body) Reset(br *bufio.Reader, f Framing, length int64, lim Limits) {
	b.br, b.framing, b.left, b.state, b.excess, b.n, b.err, b.lim = br, f, length, chunkSize, 0, 0, nil, lim.withDefaults()
	b.limit = 0
	b.trailer.reset()
	if f == Length && length <= 0 {
		b.framing = NoBody
	}
}

// SetLimit makes Next fail with ErrBodyTooLarge once more than n bytes
// would be read. Zero means no limit.
func (b *Body) SetLimit(n int64) { b.limit = n }

// Framing returns the framing the body was Reset with.
func (b *Body) Framing() Framing { return b.framing }

// N returns how many body bytes were consumed.
func (b *Body) N() int64 { return b.n }

// Done reports whether the whole body, trailer included, has been read.
func (b *Body) Done() bool {
	switch b.framing {
	case NoBody:
		return true
	case Length:
		return b.left == 0
	case Chunked:
		return b.state == chunkDone
	}
	return b.err == io.EOF
}

// wait is called before a read that needs more than n buffered bytes,
// or (n < 0) a whole line: it flushes the copy's destination if the
// source has to be waited for.
func (b *Body) wait(n int) error {
	if b.flush == nil || b.flush.Buffered() == 0 {
		return nil
	}
	if n < 0 {
		p, _ := b.br.Peek(b.br.Buffered())
		if bytes.IndexByte(p, '\n') >= 0 {
			return nil
		}
	} else if b.br.Buffered() >= n {
		return nil
	}
	if err := b.flush.Flush(); err != nil {
		return &WriteError{err}
	}
	return nil
}

// Trailer returns the trailer fields of a chunked body, once it is Done.
func (b *Body) Trailer() []Field { return b.trailer.Fields }

// Next returns the next body bytes, at most the reader's buffer, waiting
// for some if none are buffered. It returns io.EOF after the last byte
// (and trailer) and io.ErrUnexpectedEOF if the connection ends first. The
// bytes are valid until Consume or the next use of the reader.
func (b *Body) Next() ([]byte, error) {
	p, err := b.next()
	if b.limit > 0 && b.n+int64(len(p)) > b.limit {
		b.err = ErrBodyTooLarge
		return nil, b.err
	}
	return p, err
}

func (b *Body) next() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	switch b.framing {
	case NoBody:
		return nil, io.EOF
	case Length:
		if b.left == 0 {
			return nil, io.EOF
		}
		return b.peek(b.left, io.ErrUnexpectedEOF)
	case UntilClose:
		p, err := b.peek(1<<62, io.EOF)
		if err == io.EOF {
			b.err = io.EOF
		}
		return p, err
	}
	for {
		switch b.state {
		case chunkDone:
			return nil, io.EOF
		case chunkTrailer: // only after a failure, which b.err holds
			return nil, io.ErrUnexpectedEOF
		case chunkData:
			return b.peek(b.left, io.ErrUnexpectedEOF)
		case chunkEnd:
			if err := b.chunkCRLF(); err != nil {
				return nil, b.fail(err)
			}
		case chunkSize:
			if err := b.chunkHeader(); err != nil {
				return nil, b.fail(err)
			}
		}
	}
}

func (b *Body) fail(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	b.err = err
	return err
}

// peek returns up to max buffered bytes, filling the buffer if empty.
func (b *Body) peek(max int64, eof error) ([]byte, error) {
	if err := b.wait(1); err != nil {
		return nil, err
	}
	if b.br.Buffered() == 0 {
		if _, err := b.br.Peek(1); err != nil {
			if err == io.EOF {
				err = eof
			}
			if err != io.EOF {
				b.err = err
			}
			return nil, err
		}
	}
	n := int64(b.br.Buffered())
	p, _ := b.br.Peek(int(min(n, max)))
	return p, nil
}

// Left returns how many bytes of a Length body are still to be read, or
// -1 for another framing.
func (b *Body) Left() int64 {
	if b.framing != Length {
		return -1
	}
	return b.left
}

// Advance records that n bytes of a Length body were read from the
// connection directly, bypassing the reader (whose buffer must have been
// empty).
func (b *Body) Advance(n int64) {
	b.left -= n
	b.n += n
}

// Consume takes n bytes, returned by Next, out of the body.
func (b *Body) Consume(n int) {
	if n <= 0 {
		return
	}
	b.br.Discard(n)
	b.n += int64(n)
	if b.framing == Length || b.framing == Chunked {
		b.left -= int64(n)
		if b.framing == Chunked && b.left == 0 {
			b.state = chunkEnd
		}
	}
}

// chunkHeader reads a chunk-size line: 1 to 16 hex digits, then optional
// white space or a chunk extension (checked for bytes, then dropped), and
// CRLF. A bare LF is refused (RFC 9112 erratum 7633, as net/http).
func (b *Body) chunkHeader() error {
	if err := b.wait(-1); err != nil {
		return err
	}
	line, err := b.br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return errChunkTooLong
		}
		return err
	}
	if len(line) > maxChunkLine+2 {
		return errChunkTooLong
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return errChunkSize
	}
	line = line[:len(line)-2]
	if bytes.IndexByte(line, '\r') >= 0 {
		return errChunkSize
	}
	b.excess += int64(len(line)) + 4 // the line, its CRLF and the CRLF after the data
	var size int64
	i := 0
	for ; i < len(line) && isHex(line[i]); i++ {
		if i == 16 || size >= 1<<59 {
			return errChunkSize // more than 16 digits, or would not fit in an int64
		}
		size = size<<4 | int64(unhex(line[i]))
	}
	if i == 0 {
		return errChunkSize
	}
	if err := chunkRest(line[i:]); err != nil {
		return err
	}
	// Allow 16 bytes of framing per chunk plus twice its data, as net/http.
	b.excess = max(b.excess-16-2*size, 0)
	if b.excess > 16<<10 {
		return errChunkOverhead
	}
	if size == 0 {
		return b.readTrailer()
	}
	b.left, b.state = size, chunkData
	return nil
}

// chunkRest checks what follows the size: nothing, white space, or an
// extension made of field-value bytes.
func chunkRest(rest []byte) error {
	if len(rest) > 0 && rest[0] == ';' {
		for _, c := range rest {
			if !vchar[c] {
				return errChunkExt
			}
		}
		return nil
	}
	for _, c := range rest {
		if c != ' ' && c != '\t' {
			return errChunkSize
		}
	}
	return nil
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// chunkCRLF reads the CRLF that ends a chunk's data.
func (b *Body) chunkCRLF() error {
	if err := b.wait(2); err != nil {
		return err
	}
	p, err := b.br.Peek(2)
	if err != nil {
		return err
	}
	if p[0] != '\r' || p[1] != '\n' {
		return errChunkEnd
	}
	b.br.Discard(2)
	b.state = chunkSize
	return nil
}

// readTrailer reads the trailer section after the last chunk, with the
// head's rules and limits, except that lines must end in CRLF as the
// chunk-size lines do.
func (b *Body) readTrailer() error {
	b.state = chunkTrailer
	b.trailer.reset()
	b.trailer.buf = append(b.trailer.buf, 't') // a stand-in start line
	b.ends = append(b.ends[:0], 1)
	for {
		if err := b.wait(-1); err != nil {
			return err
		}
		line, err := b.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return errTrailerTooLong
		}
		if err != nil {
			return err
		}
		start := len(b.trailer.buf)
		n := len(line) - 2 // like chunk-size lines, trailer lines end in CRLF
		if n < 0 || line[n] != '\r' {
			return errTrailerLF
		}
		if bytes.IndexByte(line[:n], '\r') >= 0 {
			return ErrBareCR
		}
		if n == 0 {
			break
		}
		if start+n > b.lim.MaxHeadBytes {
			return errTrailerTooLong
		}
		b.trailer.buf = append(b.trailer.buf, line[:n]...)
		b.ends = append(b.ends, start+n)
	}
	if err := b.trailer.parseFields(b.ends, b.lim); err != nil {
		return err
	}
	b.state = chunkDone
	return nil
}
