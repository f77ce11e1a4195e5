package ajp

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// The web server's side of the wire, for the Client: Forward Request and
// request body packets out, the container's packets in.

// Forward is what a Client tells the container about a request beyond its
// method, URI, protocol and headers: the fields and attributes of a
// Forward Request that mod_jk fills from the client connection.
type Forward struct {
	// RemoteAddr is the client's IP address; RemotePort its port (sent as
	// the AJP_REMOTE_PORT attribute when not zero). Tomcat's
	// getRemoteAddr() and getRemotePort().
	RemoteAddr string
	RemotePort int
	// ServerName and ServerPort are the virtual host and the port that
	// received the request (getServerName, getServerPort when the request
	// has no Host header; Tomcat prefers the Host header).
	ServerName string
	ServerPort int
	// LocalAddr, if set, is sent as AJP_LOCAL_ADDR (getLocalAddr).
	LocalAddr string
	// Secure says the client used TLS: Tomcat's isSecure() and getScheme()
	// ("https") follow it.
	Secure bool
	// SSLCipher, SSLSession, SSLKeySize, SSLCert (PEM) and SSLProtocol
	// describe the client's TLS connection, when Secure; empty ones are not
	// sent.
	SSLCipher   string
	SSLSession  string
	SSLKeySize  int
	SSLCert     string
	SSLProtocol string
}

// methodCode returns the Forward Request code of method, or methodStored.
func methodCode(method string) byte {
	for i, m := range methods {
		if i > 0 && m == method {
			return byte(i)
		}
	}
	return methodStored
}

func requestHeaderCode(name string) uint16 {
	for i, n := range requestHeaders {
		if i > 0 && strings.EqualFold(n, name) {
			return 0xA000 | uint16(i)
		}
	}
	return 0
}

// forwardHeader reports whether a request header goes to the container:
// not those of the connection, nor the framing the client sees (the
// Client writes Content-Length and Transfer-Encoding itself).
func forwardHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Content-Length", "Host", "Expect":
		return false
	}
	return validToken(name)
}

// outRequest is the part of a request that goes into the Forward Request.
type outRequest struct {
	method, proto, uri, query, host string
	hasQuery                        bool
	header                          http.Header
	length                          int64 // body length: 0 none, -1 unknown (chunked)
	fwd                             *Forward
	route, secret                   string
}

// appendForwardRequest appends a Forward Request packet for r. It fails
// with ErrRequestTooLarge if the packet would exceed max bytes.
func appendForwardRequest(b []byte, r *outRequest, max int) ([]byte, error) {
	start := len(b)
	b = append(b, 0x12, 0x34, 0, 0)
	code := methodCode(r.method)
	b = append(b, typeForwardRequest, code)
	f := r.fwd
	b = appendString(b, r.proto)
	b = appendString(b, r.uri)
	b = appendString(b, f.RemoteAddr)
	b = appendString(b, f.RemoteAddr) // remote_host: no lookups, as HostnameLookups Off
	b = appendString(b, f.ServerName)
	b = binary.BigEndian.AppendUint16(b, uint16(f.ServerPort))
	b = appendBool(b, f.Secure)
	count := 1 // Host
	for k, vs := range r.header {
		if forwardHeader(k) {
			count += len(vs)
		}
	}
	if r.length != 0 {
		count++
	}
	b = binary.BigEndian.AppendUint16(b, uint16(count))
	b = appendHeader(b, "Host", r.host)
	switch {
	case r.length > 0:
		b = appendHeader(b, "Content-Length", strconv.FormatInt(r.length, 10))
	case r.length < 0:
		b = appendHeader(b, "Transfer-Encoding", "chunked")
	}
	for k, vs := range r.header {
		if !forwardHeader(k) {
			continue
		}
		for _, v := range vs {
			b = appendHeader(b, k, sanitizeValue(v))
		}
	}
	b = appendAttributes(b, r, code)
	if len(b)-start > max || count > 0xFFFF {
		return b[:start], ErrRequestTooLarge
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start-headerLen))
	return b, nil
}

// appendAttributes appends the attributes in mod_jk's order, then the
// terminator. Only request attributes Tomcat knows are sent: it refuses
// others with 403 unless allowedRequestAttributesPattern matches them.
func appendAttributes(b []byte, r *outRequest, code byte) []byte {
	f := r.fwd
	if r.hasQuery {
		b = appendStringAttr(b, attrQueryString, r.query)
	}
	if r.route != "" {
		b = appendStringAttr(b, attrRoute, r.route)
	}
	if f.Secure {
		for _, a := range []struct {
			code byte
			v    string
		}{{attrSSLCert, f.SSLCert}, {attrSSLCipher, f.SSLCipher}, {attrSSLSession, f.SSLSession}} {
			if a.v != "" {
				b = appendStringAttr(b, a.code, a.v)
			}
		}
		if f.SSLProtocol != "" {
			b = appendReqAttr(b, "AJP_SSL_PROTOCOL", f.SSLProtocol)
		}
	}
	if f.RemotePort != 0 {
		b = appendReqAttr(b, attrRemotePort, strconv.Itoa(f.RemotePort))
	}
	if f.LocalAddr != "" {
		b = appendReqAttr(b, "AJP_LOCAL_ADDR", f.LocalAddr)
	}
	if f.Secure && f.SSLKeySize > 0 {
		b = append(b, attrSSLKeySize)
		b = binary.BigEndian.AppendUint16(b, uint16(f.SSLKeySize))
	}
	if r.secret != "" {
		b = appendStringAttr(b, attrSecret, r.secret)
	}
	if code == methodStored {
		b = appendStringAttr(b, attrStoredMeth, r.method)
	}
	return append(b, attrDone)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendHeader(b []byte, name, value string) []byte {
	if c := requestHeaderCode(name); c != 0 {
		b = binary.BigEndian.AppendUint16(b, c)
	} else {
		b = appendString(b, name)
	}
	return appendString(b, value)
}

func appendStringAttr(b []byte, code byte, v string) []byte {
	return appendString(append(b, code), v)
}

func appendReqAttr(b []byte, name, v string) []byte {
	return appendString(appendString(append(b, attrReqAttr), name), v)
}

// appendRequestBody appends a request body packet holding data; empty
// data gives the empty packet that ends a body.
func appendRequestBody(b, data []byte) []byte {
	if len(data) == 0 {
		return append(b, 0x12, 0x34, 0, 0)
	}
	b = append(b, 0x12, 0x34)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)+2))
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

// requestBodyOverhead is the size of a request body packet beyond its data.
const requestBodyOverhead = headerLen + 2

func appendCPing(b []byte) []byte { return append(b, 0x12, 0x34, 0, 1, typeCPing) }

// decodeSendHeaders decodes a Send Headers payload (type byte included).
func decodeSendHeaders(p []byte, maxHeaders int) (status int, reason string, h http.Header, err error) {
	d := &decoder{b: p[1:]}
	status = d.uint16()
	reason, _ = d.string()
	n := d.uint16()
	if d.err != nil {
		return 0, "", nil, d.err
	}
	if status < 100 || status > 999 {
		return 0, "", nil, badPacket("status %d", status)
	}
	if n > maxHeaders {
		return 0, "", nil, fmt.Errorf("%w: %d response headers, limit %d", ErrTooManyHeaders, n, maxHeaders)
	}
	h = make(http.Header, n)
	for range n {
		var name string
		if c := d.peekUint16(); c&0xFF00 == 0xA000 {
			d.uint16()
			i := c & 0xFF
			if i == 0 || i >= len(responseHeaders) {
				d.fail("unknown response header code %#04x", c)
				break
			}
			name = responseHeaders[i]
		} else {
			name, _ = d.string()
			if d.err == nil && !validToken(name) {
				d.fail("invalid header name %q", name)
			}
		}
		value, ok := d.string()
		if d.err != nil {
			break
		}
		if !ok || !validHeaderValue(value) {
			d.fail("invalid value for header %s", name)
			break
		}
		k := http.CanonicalHeaderKey(name)
		h[k] = append(h[k], value)
	}
	if d.err != nil {
		return 0, "", nil, d.err
	}
	return status, reason, h, nil
}

// decodeSendBodyChunk returns the data of a Send Body Chunk payload (type
// byte included); Tomcat ends it with a NUL byte, others may not.
func decodeSendBodyChunk(p []byte) ([]byte, error) {
	if len(p) < 3 {
		return nil, badPacket("body chunk of %d bytes", len(p))
	}
	n := int(binary.BigEndian.Uint16(p[1:]))
	if n > len(p)-3 {
		return nil, badPacket("body chunk says %d bytes, has %d", n, len(p)-3)
	}
	return p[3 : 3+n], nil
}
