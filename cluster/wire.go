package cluster

import (
	"bufio"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// ProtocolVersion is the version of the replication wire format. It is the
// first byte of every message; a node closes a connection whose messages
// carry another version. Bump it for any change that an older node would
// misread.
const ProtocolVersion = 2

// Magic is the preamble a replication connection starts with. The transport
// that shares one TCP port between gossip and replication tells them apart
// by it: memberlist's streams start with a message type byte below 32 or with
// its label byte 244, never with 'T'.
const Magic = "TTHR"

// MessageType identifies a replication message on the wire.
//
// WARNING: the values are part of the wire format. The list is append-only:
// never renumber, reuse or remove a value; add new types at the end (and
// bump ProtocolVersion if an older node must not receive them).
type MessageType uint8

const (
	msgInvalid     MessageType = iota // 0: never sent
	msgHello                          // 1: handshake, dialer → acceptor
	msgChallenge                      // 2: handshake, acceptor → dialer
	msgAuth                           // 3: handshake, dialer's proof of the key
	msgWelcome                        // 4: handshake done, resume point
	msgReject                         // 5: handshake refused, with the reason
	msgAck                            // 6: cumulative link ack + per-session results
	msgNack                           // 7: receiver misses a sequence number
	msgRecord                         // 8: a full session record
	msgDelta                          // 9: a write to one session
	msgTouch                          // 10: batched last-access times
	msgPrepare                        // 11: takeover phase 1 request
	msgPromise                        // 12: takeover phase 1 answer
	msgFetch                          // 13: ask the sender for a full record
	msgSyncRequest                    // 14: ask for the full state
	msgSyncChunk                      // 15: part of the full state
	msgStatus                         // 16: the sender's readiness
	msgQuery                          // 17: ask for a peer's copy of one session
	msgAnswer                         // 18: the copy, or none
	msgCount                          // keep last: number of known types
)

var messageNames = [msgCount]string{
	"invalid", "hello", "challenge", "auth", "welcome", "reject", "ack", "nack",
	"record", "delta", "touch", "prepare", "promise", "fetch", "sync-request",
	"sync-chunk", "status", "query", "answer",
}

// String returns the lower-case name of the message type, for logs and
// metric labels.
func (t MessageType) String() string {
	if t < msgCount {
		return messageNames[t]
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

// Errors a peer's bad input produces. The connection is closed; the node
// carries on.
var (
	// ErrFrameTooLarge: a frame's length prefix exceeds the frame limit.
	ErrFrameTooLarge = errors.New("cluster: frame too large")
	// ErrProtocolVersion: a message carries another protocol version.
	ErrProtocolVersion = errors.New("cluster: unsupported protocol version")
	// ErrMalformed: a message cannot be decoded.
	ErrMalformed = errors.New("cluster: malformed message")
)

// sealOverhead is the AES-GCM tag size added to sealed frames.
const sealOverhead = 16

// framer reads and writes length-prefixed frames on a connection:
//
//	frame   = length:uint32be payload
//	payload = version:u8 type:u8 seq:uvarint body
//
// When send/recv are set (pre-shared key mode) each payload is sealed with
// AES-GCM under a per-direction key, the nonce being the frame counter, so a
// dropped, repeated or reordered frame fails authentication.
type framer struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	max  int // largest payload accepted or sent
	rbuf []byte
	wbuf []byte
	send *sealState
	recv *sealState
}

func newFramer(conn net.Conn, max int) *framer {
	return &framer{
		conn: conn,
		r:    bufio.NewReaderSize(conn, 32<<10),
		w:    bufio.NewWriterSize(conn, 32<<10),
		max:  max,
	}
}

// read returns the next payload, opened if sealed. It is valid until the
// next call.
func (f *framer) read() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	limit := f.max
	if f.recv != nil {
		limit += sealOverhead
	}
	if n > limit || n < 0 {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, limit)
	}
	if cap(f.rbuf) < n {
		f.rbuf = make([]byte, n, max(n, 4096))
	}
	buf := f.rbuf[:n]
	if _, err := io.ReadFull(f.r, buf); err != nil {
		return nil, err
	}
	if f.recv != nil {
		return f.recv.open(buf)
	}
	return buf, nil
}

// buffered reports whether more input is already buffered, so that the
// reader can batch its acknowledgements.
func (f *framer) buffered() bool { return f.r.Buffered() > 0 }

// write buffers one payload; flush sends it.
func (f *framer) write(payload []byte) error {
	if len(payload) > f.max {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(payload), f.max)
	}
	if f.send != nil {
		f.wbuf = f.send.seal(f.wbuf[:0], payload)
		payload = f.wbuf
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(payload)))
	if _, err := f.w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := f.w.Write(payload)
	return err
}

// writeParts buffers one payload made of a header and a body.
func (f *framer) writeParts(hdr, body []byte) error {
	n := len(hdr) + len(body)
	if n > f.max {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, f.max)
	}
	if f.send != nil {
		f.wbuf = append(append(f.wbuf[:0], hdr...), body...)
		return f.write(f.wbuf)
	}
	var lp [4]byte
	binary.BigEndian.PutUint32(lp[:], uint32(n))
	f.w.Write(lp[:])
	f.w.Write(hdr)
	_, err := f.w.Write(body)
	return err
}

func (f *framer) flush() error { return f.w.Flush() }

// sealState is one direction of an authenticated-encryption stream.
type sealState struct {
	aead  cipher.AEAD
	ctr   uint64
	nonce [12]byte
}

func (s *sealState) next() []byte {
	binary.BigEndian.PutUint64(s.nonce[4:], s.ctr)
	s.ctr++
	return s.nonce[:]
}

func (s *sealState) seal(dst, plain []byte) []byte {
	return s.aead.Seal(dst, s.next(), plain, nil)
}

func (s *sealState) open(ct []byte) ([]byte, error) {
	p, err := s.aead.Open(ct[:0], s.next(), ct, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: frame failed authentication", ErrAuth)
	}
	return p, nil
}

// appendHeader appends a payload header.
func appendHeader(dst []byte, t MessageType, seq uint64) []byte {
	dst = append(dst, ProtocolVersion, byte(t))
	return binary.AppendUvarint(dst, seq)
}

// parseHeader splits a payload into its type, sequence number and body.
func parseHeader(p []byte) (MessageType, uint64, []byte, error) {
	if len(p) < 3 {
		return 0, 0, nil, fmt.Errorf("%w: payload of %d bytes", ErrMalformed, len(p))
	}
	if p[0] != ProtocolVersion {
		return 0, 0, nil, fmt.Errorf("%w: %d (this node speaks %d)", ErrProtocolVersion, p[0], ProtocolVersion)
	}
	t := MessageType(p[1])
	if t == msgInvalid || t >= msgCount {
		return 0, 0, nil, fmt.Errorf("%w: unknown message type %d", ErrMalformed, p[1])
	}
	seq, n := binary.Uvarint(p[2:])
	if n <= 0 {
		return 0, 0, nil, fmt.Errorf("%w: bad sequence number", ErrMalformed)
	}
	return t, seq, p[2+n:], nil
}
