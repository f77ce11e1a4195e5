package h1

import (
	"bufio"
	"bytes"
)

// Request is a request head. Reuse one for every request of a
// connection: Read overwrites it, and its byte slices are valid until the
// next Read.
type Request struct {
	head
	// Method is the request method, a token.
	Method []byte
	// Target is the request target as received.
	Target []byte
	// Path is the target's path: Target up to any '?', the path of an
	// absolute-form target ("" when it has none), or "*".
	Path []byte
	// Query is the target's query, after the '?'; HasQuery says whether
	// there was a '?'.
	Query    []byte
	HasQuery bool
	// Host is the Host field's value, or the authority of an absolute-form
	// target (which replaces the Host field, as net/http does).
	Host []byte
	// Absolute: the target is in absolute form ("http://host/path").
	Absolute bool
	// Expect100: an HTTP/1.1 request says Expect: 100-continue.
	Expect100 bool

	ends []int
}

// Read reads and checks the next request head from br; the body, if any,
// is left in br. It returns io.EOF if the connection ended cleanly before
// a request began, and an *Error for a request to refuse.
func (r *Request) Read(br *bufio.Reader, lim Limits) error {
	lim = lim.withDefaults()
	r.reset()
	r.Method, r.Target, r.Path, r.Query, r.HasQuery, r.Host = nil, nil, nil, nil, false, nil
	r.Absolute, r.Expect100 = false, false
	var err error
	if r.ends, err = r.readLines(br, lim, r.ends, ErrLineTooLong); err != nil {
		return err
	}
	if err := r.requestLine(r.buf[:r.ends[0]]); err != nil {
		return err
	}
	if err := r.parseFields(r.ends, lim); err != nil {
		return err
	}
	if err := r.host(); err != nil {
		return err
	}
	if err := r.framing(); err != nil {
		return err
	}
	if err := r.expect(); err != nil {
		return err
	}
	if r.Minor == 1 { // HTTP/1.0 servers ignore Upgrade (RFC 9110 §7.8)
		r.upgrade()
	}
	return nil
}

// BodyFraming says how the request body is framed: NoBody, Length or
// Chunked.
func (r *Request) BodyFraming() Framing {
	switch {
	case r.Chunked:
		return Chunked
	case r.ContentLength > 0:
		return Length
	}
	return NoBody
}

// requestLine parses "method SP target SP HTTP/1.x".
func (r *Request) requestLine(line []byte) error {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return ErrRequestLine
	}
	r.Method, line = line[:sp], line[sp+1:]
	if sp = bytes.IndexByte(line, ' '); sp < 0 {
		return ErrRequestLine
	}
	r.Target = line[:sp]
	minor, err := version(line[sp+1:], ErrRequestLine)
	if err != nil {
		return err
	}
	r.Minor = minor
	if len(r.Method) == 0 {
		return ErrMethod
	}
	for _, c := range r.Method {
		if !tchar[c] {
			return ErrMethod
		}
	}
	return r.target()
}

// version parses "HTTP/1.1" or "HTTP/1.0". Another HTTP/x.y version is
// ErrVersion; anything else is malformed.
func version(p []byte, malformed error) (int, error) {
	if len(p) != 8 || string(p[:5]) != "HTTP/" || p[6] != '.' || !isDigit(p[5]) || !isDigit(p[7]) {
		return 0, malformed
	}
	if p[5] != '1' || p[7] > '1' {
		return 0, ErrVersion
	}
	return int(p[7] - '0'), nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// target checks the request target and splits it into Path and Query.
// Origin form ("/path?query") is the rule; absolute form
// ("http://host/path") is accepted for http and https, with the authority
// becoming the Host; "*" only for OPTIONS; CONNECT is refused.
func (r *Request) target() error {
	t := r.Target
	if len(t) == 0 {
		return ErrTarget
	}
	for _, c := range t {
		if c <= ' ' || c == 0x7f || c == '#' {
			return ErrTarget
		}
	}
	if string(r.Method) == "CONNECT" {
		return ErrConnect
	}
	switch {
	case t[0] == '/':
	case len(t) == 1 && t[0] == '*':
		if string(r.Method) != "OPTIONS" {
			return ErrTarget
		}
		r.Path = t
		return nil
	default:
		rest, ok := cutScheme(t)
		if !ok {
			return ErrTarget
		}
		end := bytes.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		authority := rest[:end]
		if !validAuthority(authority) {
			return ErrTarget
		}
		r.Absolute, r.Host, t = true, authority, rest[end:]
	}
	r.Path = t
	if q := bytes.IndexByte(t, '?'); q >= 0 {
		r.Path, r.Query, r.HasQuery = t[:q], t[q+1:], true
	}
	for i := 0; i < len(r.Path); i++ {
		if r.Path[i] == '%' && (i+2 >= len(r.Path) || !isHex(r.Path[i+1]) || !isHex(r.Path[i+2])) {
			return ErrTarget
		}
	}
	return nil
}

// cutScheme removes "http://" or "https://" (any case) from t.
func cutScheme(t []byte) ([]byte, bool) {
	for _, s := range [...]string{"http://", "https://"} {
		if len(t) >= len(s) && EqualFold(t[:len(s)], s) {
			return t[len(s):], true
		}
	}
	return nil, false
}

// validAuthority accepts "host[:port]" and "[IPv6][:port]", with the
// bytes of a Host field and no '%' in the host (no escapes, no zones).
func validAuthority(a []byte) bool {
	host, port := a, []byte(nil)
	if len(a) > 0 && a[0] == '[' {
		end := bytes.IndexByte(a, ']')
		if end < 0 {
			return false
		}
		host, port = a[1:end], a[end+1:]
		if len(port) > 0 && port[0] != ':' {
			return false
		}
	} else if i := bytes.IndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i:]
	}
	if len(host) == 0 || bytes.ContainsAny(host, "%[]") || (a[0] != '[' && bytes.IndexByte(host, ':') >= 0) {
		return false
	}
	for i := 1; i < len(port); i++ {
		if !isDigit(port[i]) {
			return false
		}
	}
	return validHost(host)
}

func validHost(h []byte) bool {
	for _, c := range h {
		if !hostByte[c] {
			return false
		}
	}
	return true
}

// host checks the Host field: exactly one for HTTP/1.1, at most one for
// HTTP/1.0, with the bytes net/http accepts in it.
func (r *Request) host() error {
	n := 0
	for i := range r.Fields {
		if f := &r.Fields[i]; f.Class == Host {
			n++
			if !validHost(f.Value) {
				return ErrHost
			}
			if !r.Absolute {
				r.Host = f.Value
			}
		}
	}
	if n > 1 || (n == 0 && r.Minor == 1) {
		return ErrHost
	}
	return nil
}

// expect accepts Expect: 100-continue and refuses any other expectation
// with 417, as net/http does. HTTP/1.0 requests get no 100 Continue
// (RFC 9110 §10.1.1).
func (r *Request) expect() error {
	for i := range r.Fields {
		if f := &r.Fields[i]; f.Class == Expect {
			if !EqualFold(f.Value, "100-continue") {
				return ErrExpectation
			}
			r.Expect100 = r.Minor == 1
		}
	}
	return nil
}
