// Package h1 reads and writes HTTP/1.1 messages on the wire, strictly
// (RFC 9112), for a proxy: request and response heads parsed into reused
// buffers, bodies of any framing read without copying, chunked encoding
// written, and the connections around them — a server loop for client
// connections and a pool of connections to an origin. It knows nothing
// about balancing.
//
// Strictness is the defence against request smuggling: a message whose
// framing two parsers could read differently is refused, never guessed at.
// ReadRequest refuses, among others, Content-Length with Transfer-Encoding,
// more than one Content-Length, a Transfer-Encoding other than a single
// final "chunked", obsolete line folding, white space before a colon,
// control bytes and bare CR anywhere in the head, and chunk-size lines that
// are malformed or too long. A proxy re-serializes every head and
// re-encodes every chunked body it forwards, so the next hop only ever
// sees canonical framing.
//
// Nothing here allocates on the common path: heads and field slices live
// in buffers reused from message to message, and their byte slices are
// valid until the next message is read into the same storage.
package h1

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"net/http"
	"strconv"
	"unsafe"
)

// Error is a malformed or refused message, with the status a server
// answers it with (400, 413, 414, 431, 501, 505) and a short reason.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string {
	return strconv.Itoa(e.Status) + " " + http.StatusText(e.Status) + ": " + e.Reason
}

func errBad(reason string) *Error { return &Error{Status: http.StatusBadRequest, Reason: reason} }

// The errors of the head parsers. Each is an *Error.
var (
	ErrHeadTooLarge   = &Error{http.StatusRequestHeaderFieldsTooLarge, "message head too large"}
	ErrLineTooLong    = &Error{http.StatusRequestURITooLong, "request line too long"}
	ErrTooManyFields  = &Error{http.StatusRequestHeaderFieldsTooLarge, "too many header fields"}
	ErrVersion        = &Error{http.StatusHTTPVersionNotSupported, "only HTTP/1.0 and HTTP/1.1 are supported"}
	ErrBareCR         = errBad("bare CR in the message head")
	ErrObsFold        = errBad("obsolete line folding")
	ErrFieldName      = errBad("invalid header field name")
	ErrSpaceColon     = errBad("white space before the colon of a header field")
	ErrFieldValue     = errBad("invalid byte in a header field value")
	ErrContentLength  = errBad("invalid Content-Length")
	ErrDupLength      = errBad("more than one Content-Length")
	ErrLengthAndTE    = errBad("both Content-Length and Transfer-Encoding")
	ErrTE             = errBad("Transfer-Encoding must be a single final chunked")
	ErrUnknownTE      = &Error{http.StatusNotImplemented, "unsupported transfer coding"}
	ErrTEInHTTP10     = errBad("Transfer-Encoding in an HTTP/1.0 message")
	ErrRequestLine    = errBad("malformed request line")
	ErrMethod         = errBad("invalid method")
	ErrTarget         = errBad("invalid request target")
	ErrHost           = errBad("missing, repeated or invalid Host")
	ErrExpectation    = &Error{http.StatusExpectationFailed, "unsupported expectation"}
	ErrConnect        = &Error{http.StatusNotImplemented, "CONNECT is not supported"}
	ErrStatusLine     = errBad("malformed status line")
	ErrTruncated      = errBad("message head ended early")
	errChunkTooLong   = errBad("chunk-size line too long")
	errChunkSize      = errBad("invalid chunk size")
	errChunkExt       = errBad("invalid chunk extension")
	errChunkEnd       = errBad("chunk data not followed by CRLF")
	errChunkOverhead  = errBad("too much chunk framing for the data")
	errTrailerTooLong = errBad("trailer section too large")
	errTrailerLF      = errBad("trailer line without CRLF")
	// ErrBodyTooLarge: a body went past the limit set with Body.SetLimit.
	ErrBodyTooLarge = &Error{http.StatusRequestEntityTooLarge, "body too large"}
)

// tchar: the bytes of a token (RFC 9110 §5.6.2).
var tchar = [256]bool{
	'!': true, '#': true, '$': true, '%': true, '&': true, '\'': true, '*': true,
	'+': true, '-': true, '.': true, '^': true, '_': true, '`': true, '|': true, '~': true,
}

// vchar: a field value byte: visible ASCII, SP, HTAB, obs-text.
var vchar [256]bool

// hostByte: the bytes net/http accepts in a Host header (httpguts.ValidHostHeader).
var hostByte [256]bool

func init() {
	for c := '0'; c <= '9'; c++ {
		tchar[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		tchar[c], tchar[c-'a'+'A'] = true, true
	}
	for c := 0x20; c < 0x100; c++ {
		vchar[c] = c != 0x7f
	}
	vchar['\t'] = true
	for c := range 256 {
		hostByte[c] = isAlnum(byte(c))
	}
	for _, c := range "!$%&'()*+,-.:;=[]_~" {
		hostByte[c] = true
	}
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// Class is what a header field is to a proxy. Parsers set it on every
// field; Other for all fields without a meaning of their own here.
type Class uint8

// The classes.
const (
	Other Class = iota
	Host
	ContentLength
	TransferEncoding
	Connection
	KeepAlive
	ProxyConnection
	TE
	Trailer
	Upgrade
	Expect
	Cookie
	SetCookie
	XForwardedFor
	XForwardedHost
	XForwardedProto
	Forwarded
	ProxyAuthenticate
	ProxyAuthorization
)

// classOf returns the class of a field name.
func classOf(name []byte) Class {
	switch len(name) {
	case 2:
		if EqualFold(name, "te") {
			return TE
		}
	case 4:
		if EqualFold(name, "host") {
			return Host
		}
	case 6:
		switch {
		case EqualFold(name, "cookie"):
			return Cookie
		case EqualFold(name, "expect"):
			return Expect
		}
	case 7:
		switch {
		case EqualFold(name, "trailer"):
			return Trailer
		case EqualFold(name, "upgrade"):
			return Upgrade
		}
	case 9:
		if EqualFold(name, "forwarded") {
			return Forwarded
		}
	case 10:
		switch {
		case EqualFold(name, "connection"):
			return Connection
		case EqualFold(name, "keep-alive"):
			return KeepAlive
		case EqualFold(name, "set-cookie"):
			return SetCookie
		}
	case 14:
		if EqualFold(name, "content-length") {
			return ContentLength
		}
	case 15:
		if EqualFold(name, "x-forwarded-for") {
			return XForwardedFor
		}
	case 16:
		if EqualFold(name, "proxy-connection") {
			return ProxyConnection
		}
		if EqualFold(name, "x-forwarded-host") {
			return XForwardedHost
		}
	case 17:
		switch {
		case EqualFold(name, "transfer-encoding"):
			return TransferEncoding
		case EqualFold(name, "x-forwarded-proto"):
			return XForwardedProto
		}
	case 18:
		if EqualFold(name, "proxy-authenticate") {
			return ProxyAuthenticate
		}
	case 19:
		if EqualFold(name, "proxy-authorization") {
			return ProxyAuthorization
		}
	}
	return Other
}

// HopByHop reports whether fields of class c belong to one connection
// and are never forwarded as they are (RFC 9110 §7.6.1, and those
// net/http's ReverseProxy removes). Transfer-Encoding is among them: a
// proxy frames each hop's body itself.
func (c Class) HopByHop() bool {
	switch c {
	case Connection, KeepAlive, ProxyConnection, ProxyAuthenticate, ProxyAuthorization, TE, Trailer, TransferEncoding, Upgrade:
		return true
	}
	return false
}

// Field is one header field line. Name keeps the case it was sent in;
// Value has no leading or trailing white space.
type Field struct {
	Name, Value []byte
	Class       Class
	// Hop: a Connection field names this field; it is hop-by-hop.
	Hop bool
}

// head is what requests and responses share: the raw head bytes and the
// fields parsed from them.
type head struct {
	buf    []byte  // the head's lines, without line ends
	Fields []Field // header fields, in order
	// Minor is the HTTP minor version: 0 or 1.
	Minor int
	// ContentLength is the body length from Content-Length, -1 if absent.
	ContentLength int64
	// Chunked: the body is chunked (Transfer-Encoding: chunked).
	Chunked bool
	// Close: the sender will close, or wants to close, the connection
	// after this message (Connection: close, or HTTP/1.0 without
	// Connection: keep-alive).
	Close bool
	// Upgrade is the protocol the Connection and Upgrade fields ask to
	// switch to, or nil.
	Upgrade []byte
	// TrailersOK: a request's TE field accepts trailers.
	TrailersOK bool

	hasHop bool // a Connection field names other fields
	nConn  int  // Connection fields
}

func (h *head) reset() {
	h.buf, h.Fields = h.buf[:0], h.Fields[:0]
	h.Minor, h.ContentLength, h.Chunked, h.Close, h.Upgrade, h.TrailersOK = 1, -1, false, false, nil, false
	h.hasHop, h.nConn = false, 0
}

// Limits bounds a message head. Zero values mean the defaults.
type Limits struct {
	// MaxHeadBytes caps the start line and the fields together. Default
	// 65536. A request over it gets 431, or 414 if its request line alone
	// is.
	MaxHeadBytes int
	// MaxFields caps the number of header fields. Default 256 (431).
	MaxFields int
}

func (l Limits) withDefaults() Limits {
	if l.MaxHeadBytes <= 0 {
		l.MaxHeadBytes = 64 << 10 // as net/http's DefaultMaxHeaderBytes plus room
	}
	if l.MaxFields <= 0 {
		l.MaxFields = 256 // HAProxy allows 101; browsers send about 20
	}
	return l
}

// readLines reads the lines of a head up to the empty line that ends it
// into h.buf, and returns their end offsets in ends. A line ends in LF,
// with or without a CR before it (RFC 9112 §2.2 lets a recipient accept
// a bare LF; the head is re-serialized with CRLF either way); any other
// CR is refused. For a request (lineErr set: the error of a request line
// over the limit), empty lines before the start line are skipped.
func (h *head) readLines(br *bufio.Reader, lim Limits, ends []int, lineErr *Error) ([]int, error) {
	ends = ends[:0]
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the reader's buffer: gather it.
			if len(h.buf)+len(line) > lim.MaxHeadBytes {
				return ends, overflow(ends, lineErr)
			}
			h.buf = append(h.buf, line...)
			continue
		}
		if err != nil {
			if err == io.EOF && len(ends) == 0 && len(h.buf) == 0 && len(line) == 0 {
				return ends, io.EOF
			}
			if err == io.EOF {
				return ends, ErrTruncated
			}
			return ends, err
		}
		start := 0
		if len(ends) > 0 {
			start = ends[len(ends)-1]
		}
		if len(h.buf)+len(line) > lim.MaxHeadBytes+2 {
			return ends, overflow(ends, lineErr)
		}
		h.buf = append(h.buf, line...)
		l := h.buf[start:]
		n := len(l) - 1 // drop the LF
		if n > 0 && l[n-1] == '\r' {
			n--
		}
		if bytes.IndexByte(l[:n], '\r') >= 0 {
			return ends, ErrBareCR
		}
		h.buf = h.buf[:start+n]
		if n == 0 {
			if len(ends) == 0 && lineErr != nil {
				continue // an empty line before the request line
			}
			if len(ends) == 0 {
				return ends, ErrStatusLine
			}
			return ends, nil
		}
		if len(h.buf) > lim.MaxHeadBytes {
			return ends, overflow(ends, lineErr)
		}
		ends = append(ends, start+n)
	}
}

func overflow(ends []int, lineErr *Error) error {
	if len(ends) == 0 && lineErr != nil {
		return lineErr
	}
	return ErrHeadTooLarge
}

// parseFields parses the field lines (lines[1:] by ends) into h.Fields.
func (h *head) parseFields(ends []int, lim Limits) error {
	if len(ends)-1 > lim.MaxFields {
		return ErrTooManyFields
	}
	for i := 1; i < len(ends); i++ {
		line := h.buf[ends[i-1]:ends[i]]
		if line[0] == ' ' || line[0] == '\t' {
			return ErrObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return ErrFieldName
		}
		name := line[:colon]
		for _, c := range name {
			if !tchar[c] {
				if c == ' ' || c == '\t' {
					return ErrSpaceColon
				}
				return ErrFieldName
			}
		}
		value := trimOWS(line[colon+1:])
		for _, c := range value {
			if !vchar[c] {
				return ErrFieldValue
			}
		}
		h.Fields = append(h.Fields, Field{Name: name, Value: value, Class: classOf(name)})
	}
	return nil
}

// framing reads the fields that frame the body and say how the
// connection goes on: Content-Length, Transfer-Encoding, Connection, TE.
func (h *head) framing() error {
	nLength := 0
	var te []byte
	nTE := 0
	for i := range h.Fields {
		f := &h.Fields[i]
		switch f.Class {
		case ContentLength:
			nLength++
			n, ok := parseLength(f.Value)
			if !ok {
				return ErrContentLength
			}
			h.ContentLength = n
		case TransferEncoding:
			nTE++
			te = f.Value
		case Connection:
			h.nConn++
			h.connection(f.Value)
		case TE:
			h.TrailersOK = h.TrailersOK || hasToken(f.Value, "trailers")
		}
	}
	if nLength > 1 {
		return ErrDupLength
	}
	if nTE > 0 {
		if nLength > 0 {
			return ErrLengthAndTE
		}
		if h.Minor == 0 {
			return ErrTEInHTTP10
		}
		if nTE > 1 {
			return ErrTE
		}
		if err := checkTE(te); err != nil {
			return err
		}
		h.Chunked = true
	}
	if h.Minor == 0 {
		h.Close = !h.keepAlive10()
	}
	if h.hasHop {
		h.markHop()
	}
	return nil
}

// connection applies one Connection field's tokens.
func (h *head) connection(v []byte) {
	for len(v) > 0 {
		var tok []byte
		if tok, v = nextToken(v); len(tok) == 0 {
			continue
		}
		switch {
		case EqualFold(tok, "close"):
			h.Close = true
		case EqualFold(tok, "keep-alive"), EqualFold(tok, "upgrade"):
		default:
			h.hasHop = true
		}
	}
}

func (h *head) keepAlive10() bool {
	if h.Close {
		return false
	}
	for i := range h.Fields {
		if h.Fields[i].Class == Connection && hasToken(h.Fields[i].Value, "keep-alive") {
			return true
		}
	}
	return false
}

// markHop marks the fields a Connection field names as hop-by-hop.
func (h *head) markHop() {
	for i := range h.Fields {
		f := &h.Fields[i]
		for j := range h.Fields {
			if h.Fields[j].Class == Connection && hasToken(h.Fields[j].Value, unsafeString(f.Name)) {
				f.Hop = true
				break
			}
		}
	}
}

// upgrade sets Upgrade if a Connection field has the upgrade token and
// the Upgrade field is printable ASCII (else the message is taken as not
// asking for one, as net/http's ReverseProxy refuses to switch to it).
func (h *head) upgrade() {
	if h.nConn == 0 {
		return
	}
	up := false
	for i := range h.Fields {
		if h.Fields[i].Class == Connection && hasToken(h.Fields[i].Value, "upgrade") {
			up = true
		}
	}
	if !up {
		return
	}
	for i := range h.Fields {
		if h.Fields[i].Class == Upgrade {
			for _, c := range h.Fields[i].Value {
				if c < ' ' || c > '~' {
					return
				}
			}
			if len(h.Fields[i].Value) > 0 {
				h.Upgrade = h.Fields[i].Value
			}
			return
		}
	}
}

// checkTE accepts a Transfer-Encoding value that is exactly "chunked".
// When chunked is not the final coding the length of the body cannot be
// known: 400 (RFC 9112 §6.3). A coding before a final chunked is one this
// proxy does not implement: 501 (§6.1).
func checkTE(v []byte) error {
	if EqualFold(v, "chunked") {
		return nil // the only coding accepted, and only on its own (no empty list elements)
	}
	n, chunked, chunkedLast := 0, 0, false
	for len(v) > 0 {
		var tok []byte
		if tok, v = nextToken(v); len(tok) == 0 {
			continue
		}
		n++
		chunkedLast = EqualFold(tok, "chunked")
		if chunkedLast {
			chunked++
		}
	}
	if !chunkedLast || chunked > 1 || n == 1 {
		return ErrTE
	}
	return ErrUnknownTE
}

// parseLength parses a Content-Length value: decimal digits only, below
// 2^63.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// nextToken returns the first element of a comma-separated list value,
// trimmed (possibly empty), and the rest of the list.
func nextToken(v []byte) (tok, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return trimOWS(v[:i]), v[i+1:]
	}
	return trimOWS(v), nil
}

// hasToken reports whether list value v has the element tok
// (case-insensitive).
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var t []byte
		if t, v = nextToken(v); EqualFold(t, tok) {
			return true
		}
	}
	return false
}

// unsafeString views b as a string without copying; b must not change
// while the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// EqualFold reports whether b equals s, ASCII case-insensitively.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
