package ajp

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Info is what the web server said about a request beyond its method, URI,
// protocol and headers. Get it with RequestInfo.
//
// All of it comes from the web server, which an AJP connector trusts (that
// is what the secret is for); but the Attributes and Route are under the
// control of the web server's configuration (JkEnvVar, SetEnv AJP_…), and
// mod_jk sets Route from the session id the client sent: decide nothing
// about security on them.
type Info struct {
	// RemoteHost is the client's host name if the web server looked it up
	// (HostnameLookups), else its address.
	RemoteHost string
	// ServerName and ServerPort are the virtual host and port that received
	// the request.
	ServerName string
	ServerPort int
	// Secure reports whether the client reached the web server over TLS
	// (AJP's is_ssl). Request.TLS is non-nil exactly when it is true.
	Secure bool
	// SSLCert is the client certificate chain in PEM as the web server
	// forwarded it (unverified here), SSLCipher the cipher suite's OpenSSL
	// name, SSLSession the TLS session id, SSLKeySize the cipher's key size
	// in bits (0 when not sent).
	SSLCert    string
	SSLCipher  string
	SSLSession string
	SSLKeySize int
	// RemoteUser and AuthType are set when the web server authenticated the
	// user itself.
	RemoteUser string
	AuthType   string
	// Route is the jvm_route the balancer chose the worker for (mod_jk
	// sends the worker's route when it routed by session). Informational.
	Route string
	// Attributes are the request attributes (req_attribute) the web server
	// sent: mod_jk sends AJP_REMOTE_PORT, AJP_LOCAL_ADDR and
	// JK_LB_ACTIVATION, plus the variables named by JkEnvVar;
	// mod_proxy_ajp sends AJP_REMOTE_PORT and every AJP_* environment
	// variable (without the prefix). Nil when none.
	Attributes map[string]string
}

type infoKey struct{}

// RequestInfo returns what the web server said about r beyond HTTP, or nil
// if r was not received by this package's Server.
func RequestInfo(r *http.Request) *Info {
	i, _ := r.Context().Value(infoKey{}).(*Info)
	return i
}

// Request attributes with a meaning for the request itself.
const (
	attrRemotePort = "AJP_REMOTE_PORT"
)

// newRequest builds the *http.Request for f, with ctx as its context. The
// body is set by the caller.
func newRequest(ctx context.Context, f *forwardRequest) (*http.Request, error) {
	uri := f.uri
	if uri == "" || (uri[0] != '/' && uri != "*" && !absoluteURI(uri)) {
		return nil, badPacket("req_uri %q", uri)
	}
	if f.hasQuery {
		uri += "?" + f.query
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, badPacket("req_uri %q: %v", uri, err)
	}
	major, minor, ok := http.ParseHTTPVersion(f.protocol)
	if !ok {
		return nil, badPacket("protocol %q", f.protocol)
	}
	info := &Info{
		RemoteHost: f.remoteHost,
		ServerName: f.serverName,
		ServerPort: f.serverPort,
		Secure:     f.isSSL,
		SSLCert:    f.sslCert,
		SSLCipher:  f.sslCipher,
		SSLSession: f.sslSession,
		SSLKeySize: f.sslKeySize,
		RemoteUser: f.remoteUser,
		AuthType:   f.authType,
		Route:      f.route,
		Attributes: f.attrs,
	}
	r := &http.Request{
		Method:     f.method,
		URL:        u,
		Proto:      f.protocol,
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     f.header,
		RequestURI: uri,
		RemoteAddr: remoteAddr(f.remoteAddr, f.attrs[attrRemotePort]),
	}
	r.Host = hostOf(f, r.Header)
	if u.Host != "" { // an absolute req_uri names the host, as in HTTP
		r.Host = u.Host
	}
	r.Header.Del("Host")
	if f.isSSL {
		// A marker, so that code asking r.TLS != nil (secure cookies,
		// redirects to https) sees what the client used. The web server
		// ended the TLS connection; nothing here was negotiated by Go.
		r.TLS = &tls.ConnectionState{HandshakeComplete: true, ServerName: hostName(r.Host)}
	}
	if err := setBodyLength(r); err != nil {
		return nil, err
	}
	return r.WithContext(context.WithValue(ctx, infoKey{}, info)), nil
}

// remoteAddr joins the client address with the port mod_jk and
// mod_proxy_ajp send as a request attribute ("0" when absent), so that
// RemoteAddr has net/http's "host:port" form.
func remoteAddr(addr, port string) string {
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		port = "0"
	}
	return net.JoinHostPort(addr, port)
}

// hostOf is the Host header, or else the server name and port.
func hostOf(f *forwardRequest, h http.Header) string {
	if hs := h["Host"]; len(hs) > 0 && hs[0] != "" {
		return hs[0]
	}
	if f.serverPort == 0 || (f.serverPort == 80 && !f.isSSL) || (f.serverPort == 443 && f.isSSL) {
		return f.serverName
	}
	return net.JoinHostPort(f.serverName, strconv.Itoa(f.serverPort))
}

// absoluteURI reports whether uri is in absolute form (http://host/path),
// which Tomcat also accepts.
func absoluteURI(uri string) bool {
	l := strings.ToLower(uri[:min(len(uri), 8)])
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

func hostName(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// setBodyLength sets ContentLength and TransferEncoding from the headers:
// a chunked request has an unknown length (the web server has removed the
// chunking), a request with Content-Length that many bytes, any other
// none.
func setBodyLength(r *http.Request) error {
	if te := r.Header.Values("Transfer-Encoding"); len(te) > 0 {
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
		r.Header.Del("Transfer-Encoding")
		r.Header.Del("Content-Length")
		return nil
	}
	cl := r.Header.Values("Content-Length")
	if len(cl) == 0 {
		return nil
	}
	for _, v := range cl[1:] {
		if v != cl[0] {
			return badPacket("conflicting Content-Length values")
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
	if err != nil || n < 0 {
		return badPacket("Content-Length %q", cl[0])
	}
	r.ContentLength = n
	return nil
}

// logPath is the part of a request URI the server's log may hold: the path
// without its parameters (";jsessionid=…") and query, which may carry a
// session id.
func logPath(uri string) string {
	if i := strings.IndexAny(uri, ";?"); i >= 0 {
		return uri[:i]
	}
	return uri
}
