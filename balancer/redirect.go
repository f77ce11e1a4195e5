package balancer

import (
	"net/http"
	"strconv"
	"strings"
)

// A Mux with MuxOptions.RedirectHTTPS set answers every request (but its
// probes) with a redirect to the same URL over https, as a plaintext
// listener in front of a TLS one does (HAProxy's "redirect scheme https",
// nginx's "return 301 https://$host$request_uri").

// redirect returns the answer to a request for host and target (the
// request target as received) on a redirecting Mux: its status and
// Location. ok is false when the Mux does not redirect. A request without
// a usable host gets 400 and no location.
func (m *Mux) redirect(method, host, target string) (status int, location string, ok bool) {
	if m.httpsPort == 0 {
		return 0, "", false
	}
	h := stripPort(host)
	if !validRedirectHost(h) {
		return http.StatusBadRequest, "", true
	}
	var b strings.Builder
	b.WriteString("https://")
	b.WriteString(h)
	if m.httpsPort != 443 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(m.httpsPort))
	}
	if !strings.HasPrefix(target, "/") { // absolute-form or "*": keep the path only
		if i := strings.Index(target, "://"); i >= 0 {
			rest := target[i+3:]
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				target = rest[j:]
			} else {
				target = "/"
			}
		} else {
			target = "/"
		}
	}
	b.WriteString(target)
	status = http.StatusPermanentRedirect // keeps the method and body
	if method == http.MethodGet || method == http.MethodHead {
		status = http.StatusMovedPermanently // understood by every client
	}
	return status, b.String(), true
}

// validRedirectHost reports whether h can go in a Location: a host name,
// an IPv4 address or a bracketed IPv6 address, nothing that could end the
// authority or the header.
func validRedirectHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	if h[0] == '[' {
		return h[len(h)-1] == ']' && strings.Trim(h[1:len(h)-1], "0123456789abcdefABCDEF:.") == ""
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !(isHostByte(c)) {
			return false
		}
	}
	return true
}

func isHostByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_'
}

// The bodies of a redirect, and of a request without a host to redirect to.
const (
	redirectBody = "Moved to https\n"
	noHostBody   = "400 Bad Request: no host to redirect to\n"
)
