package balancer

// The forwarding headers a member gets, the same from both engines:
// X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto and Forwarded
// (RFC 7239). Incoming ones are kept and extended only when the client is
// a trusted proxy; from anyone else they are replaced.

// forwarding is what the forwarding headers of one request say.
type forwarding struct {
	trusted bool
	host    string // X-Forwarded-Host and Forwarded host
	proto   string // X-Forwarded-Proto and Forwarded proto
}

// priorHeaders gives the incoming values of a forwarding header, for a
// request from a trusted proxy. name is canonical ("X-Forwarded-For").
type priorHeaders interface {
	values(name string) []string
}

// forwarding decides the values for a request whose incoming forwarding
// headers are in in.
func (a *attempt) forwarding(in priorHeaders) forwarding {
	f := forwarding{host: a.req.host, proto: "http"}
	if a.req.tls {
		f.proto = "https"
	}
	f.trusted = a.req.clientKnown && a.trusted()
	if f.trusted {
		if v := in.values("X-Forwarded-Proto"); len(v) > 0 {
			f.proto = v[0]
		}
		if v := in.values("X-Forwarded-Host"); len(v) > 0 {
			f.host = v[0]
		}
	}
	a.https = f.proto == "https"
	return f
}

func (a *attempt) trusted() bool {
	for _, p := range a.s.opts.TrustedProxies {
		if p.Contains(a.req.client) {
			return true
		}
	}
	return false
}

// appendXFF appends the X-Forwarded-For value: the prior ones from a
// trusted proxy, then the client's address.
func (a *attempt) appendXFF(dst []byte, f *forwarding, in priorHeaders) []byte {
	if f.trusted {
		dst = appendPrior(dst, in.values("X-Forwarded-For"))
	}
	return append(dst, a.req.clientIP...)
}

// appendForwarded appends the Forwarded value: the prior elements from a
// trusted proxy, then for=…;host=…;proto=….
func (a *attempt) appendForwarded(dst []byte, f *forwarding, in priorHeaders) []byte {
	if f.trusted {
		dst = appendPrior(dst, in.values("Forwarded"))
	}
	dst = append(dst, "for="...)
	switch {
	case !a.req.clientKnown:
		dst = append(dst, "unknown"...)
	case a.req.client.Is6():
		dst = append(dst, `"[`...)
		dst = append(dst, a.req.clientIP...)
		dst = append(dst, `]"`...)
	default:
		dst = append(dst, a.req.clientIP...)
	}
	dst = append(dst, ";host="...)
	dst = appendQuoted(dst, f.host)
	dst = append(dst, ";proto="...)
	return append(dst, f.proto...)
}

// appendPrior appends values joined by ", ", and a final ", " if any.
func appendPrior(dst []byte, values []string) []byte {
	for _, v := range values {
		dst = append(dst, v...)
		dst = append(dst, ", "...)
	}
	return dst
}

// appendQuoted appends s as an HTTP quoted-string (RFC 9110 §5.6.4): a
// backslash before " and \, control characters other than tab left out
// (a header value cannot hold them; this is a second guard).
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case (c < ' ' && c != '\t') || c == 0x7f:
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
