package ajp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// Packet framing. A packet from the web server starts with 0x12 0x34, one
// to the web server with "AB"; then comes the payload length (big endian)
// and the payload, whose first byte is the packet type.
const (
	magicFromServer = 0x1234 // web server → container
	magicToServer   = 0x4142 // "AB": container → web server
	headerLen       = 4      // magic + length

	// DefaultPacketSize is the largest packet, header included, that mod_jk
	// (max_packet_size) and mod_proxy_ajp (ProxyIOBufferSize) send and
	// accept unless configured otherwise.
	DefaultPacketSize = 8192
	// MaxPacketSize is the largest packet size AJP13 peers can be
	// configured with.
	MaxPacketSize = 65536

	nullString = 0xFFFF // string length meaning "absent"
)

// Packet types. The values are fixed by the AJP13 protocol: never change
// them.
const (
	// web server → container
	typeForwardRequest = 2
	typeShutdown       = 7
	typeCPing          = 10

	// container → web server
	typeSendBodyChunk = 3
	typeSendHeaders   = 4
	typeEndResponse   = 5
	typeGetBodyChunk  = 6
	typeCPong         = 9
)

// methods are the request method codes of a Forward Request (index = code).
// Code 0xFF means the method is in the stored_method attribute.
var methods = [...]string{
	1: "OPTIONS", 2: "GET", 3: "HEAD", 4: "POST", 5: "PUT", 6: "DELETE",
	7: "TRACE", 8: "PROPFIND", 9: "PROPPATCH", 10: "MKCOL", 11: "COPY",
	12: "MOVE", 13: "LOCK", 14: "UNLOCK", 15: "ACL", 16: "REPORT",
	17: "VERSION-CONTROL", 18: "CHECKIN", 19: "CHECKOUT", 20: "UNCHECKOUT",
	21: "SEARCH", 22: "MKWORKSPACE", 23: "UPDATE", 24: "LABEL", 25: "MERGE",
	26: "BASELINE-CONTROL", 27: "MKACTIVITY",
}

const methodStored = 0xFF

// requestHeaders are the coded request header names (0xA0nn, index = nn).
var requestHeaders = [...]string{
	1: "Accept", 2: "Accept-Charset", 3: "Accept-Encoding", 4: "Accept-Language",
	5: "Authorization", 6: "Connection", 7: "Content-Type", 8: "Content-Length",
	9: "Cookie", 10: "Cookie2", 11: "Host", 12: "Pragma", 13: "Referer",
	14: "User-Agent",
}

// responseHeaders are the coded response header names (0xA0nn, index = nn).
var responseHeaders = [...]string{
	1: "Content-Type", 2: "Content-Language", 3: "Content-Length", 4: "Date",
	5: "Last-Modified", 6: "Location", 7: "Set-Cookie", 8: "Set-Cookie2",
	9: "Servlet-Engine", 10: "Status", 11: "WWW-Authenticate",
}

// Attribute codes of a Forward Request.
const (
	attrContext     = 0x01 // string, unused by mod_jk
	attrServletPath = 0x02 // string, unused by mod_jk
	attrRemoteUser  = 0x03
	attrAuthType    = 0x04
	attrQueryString = 0x05
	attrRoute       = 0x06 // jvm_route
	attrSSLCert     = 0x07
	attrSSLCipher   = 0x08
	attrSSLSession  = 0x09
	attrReqAttr     = 0x0A // name and value strings
	attrSSLKeySize  = 0x0B // integer
	attrSecret      = 0x0C
	attrStoredMeth  = 0x0D
	attrDone        = 0xFF
)

// Errors about what the web server sent. The connection is closed after
// any of them.
var (
	// ErrBadPacket: a packet does not follow AJP13 (wrong magic, truncated
	// field, unknown code, a value HTTP does not allow).
	ErrBadPacket = errors.New("ajp: malformed packet")
	// ErrPacketTooLarge: a packet is larger than Options.PacketSize.
	ErrPacketTooLarge = errors.New("ajp: packet too large")
	// ErrTooManyHeaders: a request has more headers or attributes than
	// Options.MaxHeaders.
	ErrTooManyHeaders = errors.New("ajp: too many headers")
)

// ErrHeadersTooLarge is returned by a ResponseWriter's Write and Flush
// when the response headers do not fit in one packet; the client gets a
// 500 instead.
var ErrHeadersTooLarge = errors.New("ajp: response headers do not fit in one packet")

func badPacket(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadPacket}, args...)...)
}

// readPacket reads one packet from the web server into buf (which must
// hold max-headerLen bytes) and returns its payload.
func readPacket(r *bufio.Reader, buf []byte, max int) ([]byte, error) {
	return readFramed(r, buf, max, magicFromServer)
}

// readFramed reads one packet starting with magic into buf (which must
// hold max-headerLen bytes) and returns its payload.
func readFramed(r *bufio.Reader, buf []byte, max int, magic uint16) ([]byte, error) {
	h, err := r.Peek(headerLen)
	if err != nil {
		if len(h) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	got := binary.BigEndian.Uint16(h)
	n := int(binary.BigEndian.Uint16(h[2:]))
	if got != magic {
		return nil, badPacket("magic %#04x, want %#04x", got, magic)
	}
	if n > max-headerLen {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrPacketTooLarge, n+headerLen, max)
	}
	r.Discard(headerLen)
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf[:n], nil
}

// decoder reads AJP13 data types from a payload; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = badPacket(format, args...)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uint16() int {
	if d.err != nil || len(d.b) < 2 {
		d.fail("truncated")
		return 0
	}
	v := int(binary.BigEndian.Uint16(d.b))
	d.b = d.b[2:]
	return v
}

func (d *decoder) peekUint16() int {
	if len(d.b) < 2 {
		return -1
	}
	return int(binary.BigEndian.Uint16(d.b))
}

// string reads a length-prefixed, NUL-terminated string; ok is false for
// the null string (length 0xFFFF).
func (d *decoder) string() (s string, ok bool) {
	n := d.uint16()
	if d.err != nil || n == nullString {
		return "", false
	}
	if len(d.b) < n+1 {
		d.fail("truncated string")
		return "", false
	}
	if d.b[n] != 0 {
		d.fail("string not NUL-terminated")
		return "", false
	}
	s = string(d.b[:n])
	d.b = d.b[n+1:]
	return s, true
}

// forwardRequest is a decoded Forward Request packet.
type forwardRequest struct {
	method     string
	protocol   string
	uri        string
	remoteAddr string
	remoteHost string
	serverName string
	serverPort int
	isSSL      bool
	header     http.Header

	query      string
	hasQuery   bool
	secret     string
	hasSecret  bool
	remoteUser string
	authType   string
	route      string
	sslCert    string
	sslCipher  string
	sslSession string
	sslKeySize int
	attrs      map[string]string
}

// decodeForwardRequest decodes the payload of a Forward Request (type byte
// included). maxHeaders bounds the headers and the req_attribute pairs,
// each count on its own.
func decodeForwardRequest(p []byte, maxHeaders int) (*forwardRequest, error) {
	d := &decoder{b: p}
	if t := d.byte(); t != typeForwardRequest {
		d.fail("type %d is not a forward request", t)
	}
	f := &forwardRequest{}
	code := int(d.byte())
	f.protocol = d.mustString("protocol")
	f.uri = d.mustString("req_uri")
	f.remoteAddr, _ = d.string()
	f.remoteHost, _ = d.string()
	f.serverName, _ = d.string()
	f.serverPort = d.uint16()
	f.isSSL = d.bool()
	n := d.uint16()
	if d.err != nil {
		return nil, d.err
	}
	if n > maxHeaders {
		return nil, fmt.Errorf("%w: %d headers, limit %d", ErrTooManyHeaders, n, maxHeaders)
	}
	f.header = make(http.Header, n)
	for range n {
		d.header(f.header)
	}
	if err := f.decodeAttributes(d, maxHeaders); err != nil {
		return nil, err
	}
	switch {
	case code == methodStored:
		if f.method == "" {
			return nil, badPacket("method code 0xFF without stored_method")
		}
	case code > 0 && code < len(methods):
		f.method = methods[code]
	default:
		return nil, badPacket("unknown method code %d", code)
	}
	if !validToken(f.method) {
		return nil, badPacket("invalid method %q", f.method)
	}
	return f, nil
}

func (d *decoder) mustString(field string) string {
	s, ok := d.string()
	if !ok {
		d.fail("%s missing", field)
	}
	return s
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("boolean not 0 or 1")
		return false
	}
}

// header reads one request header (coded or named) into h.
func (d *decoder) header(h http.Header) {
	var name string
	if c := d.peekUint16(); c&0xFF00 == 0xA000 {
		d.uint16()
		if i := c & 0xFF; i > 0 && i < len(requestHeaders) {
			name = requestHeaders[i]
		} else {
			d.fail("unknown header code %#04x", c)
			return
		}
	} else {
		name, _ = d.string()
		if d.err == nil && !validToken(name) {
			d.fail("invalid header name %q", name)
		}
		name = http.CanonicalHeaderKey(name)
	}
	value, ok := d.string()
	if d.err != nil {
		return
	}
	if !ok || !validHeaderValue(value) {
		d.fail("invalid value for header %s", name)
		return
	}
	h[name] = append(h[name], value)
}

// decodeAttributes reads the attributes up to the terminator, which must
// end the packet.
func (f *forwardRequest) decodeAttributes(d *decoder, maxAttrs int) error {
	for d.err == nil {
		code := d.byte()
		if code == attrDone {
			break
		}
		switch code {
		case attrContext, attrServletPath:
			d.string() // never sent by mod_jk or mod_proxy_ajp; ignored as Tomcat does
		case attrRemoteUser:
			f.remoteUser, _ = d.string()
		case attrAuthType:
			f.authType, _ = d.string()
		case attrQueryString:
			f.query, f.hasQuery = d.string()
		case attrRoute:
			f.route, _ = d.string()
		case attrSSLCert:
			f.sslCert, _ = d.string()
		case attrSSLCipher:
			f.sslCipher, _ = d.string()
		case attrSSLSession:
			f.sslSession, _ = d.string()
		case attrSSLKeySize:
			f.sslKeySize = d.uint16()
		case attrSecret:
			if f.hasSecret {
				d.fail("secret sent twice")
			}
			f.secret, f.hasSecret = d.string()
		case attrStoredMeth:
			f.method, _ = d.string()
		case attrReqAttr:
			name, _ := d.string()
			value, _ := d.string()
			if d.err != nil {
				break
			}
			if f.attrs == nil {
				f.attrs = map[string]string{}
			}
			if _, dup := f.attrs[name]; !dup && len(f.attrs) == maxAttrs {
				return fmt.Errorf("%w: more than %d request attributes", ErrTooManyHeaders, maxAttrs)
			}
			f.attrs[name] = value
		default:
			d.fail("unknown attribute code %#02x", code)
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d bytes after the terminator", len(d.b))
	}
	return d.err
}

// decodeBodyChunk returns the data of a request body packet; an empty
// payload or a zero length both mean the body has ended.
func decodeBodyChunk(p []byte) ([]byte, error) {
	if len(p) == 0 {
		return nil, nil
	}
	if len(p) < 2 {
		return nil, badPacket("body chunk of %d bytes", len(p))
	}
	n := int(binary.BigEndian.Uint16(p))
	if n > len(p)-2 {
		return nil, badPacket("body chunk says %d bytes, has %d", n, len(p)-2)
	}
	return p[2 : 2+n], nil
}

// Encoding of packets to the web server: each appendX appends one whole
// packet (header included) to b.

func appendPacket(b []byte, payload func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, 'A', 'B', 0, 0)
	b = payload(b)
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start-headerLen))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	b = append(b, s...)
	return append(b, 0)
}

// appendSendHeaders appends a Send Headers packet. Header names that HTTP
// does not allow are dropped, and CR, LF and NUL in values become spaces,
// as net/http does. It fails with ErrHeadersTooLarge if the packet would
// exceed max bytes.
func appendSendHeaders(b []byte, status int, msg string, h http.Header, max int) ([]byte, error) {
	start := len(b)
	names := make([]string, 0, len(h))
	for k := range h {
		if validToken(k) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	count := 0
	for _, k := range names {
		count += len(h[k])
	}
	b = appendPacket(b, func(b []byte) []byte {
		b = append(b, typeSendHeaders)
		b = binary.BigEndian.AppendUint16(b, uint16(status))
		b = appendString(b, msg)
		b = binary.BigEndian.AppendUint16(b, uint16(count))
		for _, k := range names {
			code := responseHeaderCode(k)
			for _, v := range h[k] {
				if code != 0 {
					b = binary.BigEndian.AppendUint16(b, code)
				} else {
					b = appendString(b, k)
				}
				b = appendString(b, sanitizeValue(v))
			}
		}
		return b
	})
	if len(b)-start > max || count > 0xFFFF {
		return b[:start], ErrHeadersTooLarge
	}
	return b, nil
}

func responseHeaderCode(name string) uint16 {
	for i, n := range responseHeaders {
		if i > 0 && strings.EqualFold(n, name) {
			return 0xA000 | uint16(i)
		}
	}
	return 0
}

// appendBodyChunk appends a Send Body Chunk packet holding data. Like
// Tomcat it ends the packet with a NUL byte, which mod_proxy_ajp requires;
// so a packet of size max carries at most max-8 bytes of data.
func appendBodyChunk(b, data []byte) []byte {
	return appendPacket(b, func(b []byte) []byte {
		b = append(b, typeSendBodyChunk)
		b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
		b = append(b, data...)
		return append(b, 0)
	})
}

// bodyChunkOverhead is the size of a Send Body Chunk packet beyond its data.
const bodyChunkOverhead = headerLen + 1 + 2 + 1

func appendEndResponse(b []byte, reuse bool) []byte {
	r := byte(0)
	if reuse {
		r = 1
	}
	return append(b, 'A', 'B', 0, 2, typeEndResponse, r)
}

func appendGetBodyChunk(b []byte, n int) []byte {
	return append(b, 'A', 'B', 0, 3, typeGetBodyChunk, byte(n>>8), byte(n))
}

func appendCPong(b []byte) []byte { return append(b, 'A', 'B', 0, 1, typeCPong) }

// validToken reports whether s is a non-empty HTTP token (RFC 9110 5.6.2),
// as header names and methods must be.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || !tokenChars[c] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validHeaderValue reports whether v holds no CR, LF or NUL.
func validHeaderValue(v string) bool {
	return !strings.ContainsAny(v, "\r\n\x00")
}

func sanitizeValue(v string) string {
	if validHeaderValue(v) {
		return v
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, v)
}
