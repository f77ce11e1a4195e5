package balancer

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Mux sends each request to the balancer whose site serves it: first by
// the request's host, then by the longest path prefix matching on a whole
// segment ("/app" serves "/app", "/app/x" and "/app;jsessionid=…", not
// "/apple"; "/" serves everything). Both engines dispatch with it. A Mux
// is immutable and safe for concurrent use.
//
// A site names hosts exactly ("shop.example.com") or by a wildcard for one
// label ("*.example.com" serves "a.example.com", not "example.com" nor
// "a.b.example.com", as a certificate's wildcard), compared without case,
// port or final dot; the exact name wins. A request whose host a site
// names is served by that host's sites only. A request whose host no site
// names goes to the sites without hosts, the default; if there are none,
// it gets MuxOptions.UnknownHost.
type Mux struct {
	exact    map[string][]muxRoute // by host
	wildcard map[string][]muxRoute // by the parent domain of "*.parent"
	any      []muxRoute            // sites without hosts
	unknown  int                   // status for a host no site serves
	probes   *Probes               // answered before routing, if set
	// httpsPort, if set, makes every other request a redirect to https.
	httpsPort int
}

type muxRoute struct {
	prefix string // without a trailing slash; "" for "/"
	b      *Balancer
}

// Site is where a balancer serves requests.
type Site struct {
	// Hosts are the host names served: exact, or "*.example.com". Default
	// none: every host that no other site names.
	Hosts []string
	// Path is the path prefix served, matched on whole segments. Default "/".
	Path string
	// Balancer serves the site's requests.
	Balancer *Balancer
}

// MuxOptions configures a Mux.
type MuxOptions struct {
	// UnknownHost is the status of a request whose host no site names
	// when no site is without hosts. Default 421 (Misdirected Request,
	// which also tells a browser that reused a connection made for
	// another host to open a new one).
	UnknownHost int
	// Probes, if set, are answered by the Mux itself (see Probes).
	Probes *Probes
	// RedirectHTTPS, if set, is the port of the https URL every request
	// but the probes is redirected to (see redirect.go): 301 for GET and
	// HEAD, 308 for the other methods; the sites are not used. Default 0:
	// no redirect.
	RedirectHTTPS int
}

// NewMux returns a Mux over routes, a map from path prefix to balancer,
// for every host.
func NewMux(routes map[string]*Balancer) *Mux {
	sites := make([]Site, 0, len(routes))
	for p, b := range routes {
		sites = append(sites, Site{Path: p, Balancer: b})
	}
	return NewSiteMux(sites, MuxOptions{})
}

// NewSiteMux returns a Mux over sites. Two sites with the same host and
// path are a mistake the configuration rules out; the last one wins.
func NewSiteMux(sites []Site, o MuxOptions) *Mux {
	if o.UnknownHost == 0 {
		o.UnknownHost = http.StatusMisdirectedRequest
	}
	m := &Mux{exact: map[string][]muxRoute{}, wildcard: map[string][]muxRoute{}, unknown: o.UnknownHost, probes: o.Probes, httpsPort: o.RedirectHTTPS}
	for _, s := range sites {
		r := muxRoute{prefix: strings.TrimSuffix(s.Path, "/"), b: s.Balancer}
		if len(s.Hosts) == 0 {
			m.any = append(m.any, r)
		}
		for _, h := range s.Hosts {
			h = normalHost(h)
			if parent, ok := strings.CutPrefix(h, "*."); ok {
				m.wildcard[parent] = append(m.wildcard[parent], r)
			} else {
				m.exact[h] = append(m.exact[h], r)
			}
		}
	}
	sortRoutes(m.any)
	for _, rs := range m.exact {
		sortRoutes(rs)
	}
	for _, rs := range m.wildcard {
		sortRoutes(rs)
	}
	return m
}

func sortRoutes(rs []muxRoute) {
	sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].prefix) > len(rs[j].prefix) })
}

// Match returns the balancer serving path (the decoded URL path) for a
// request without a host, or nil.
func (m *Mux) Match(path string) *Balancer {
	b, _ := m.Route("", path)
	return b
}

// Route returns the balancer serving a request for host (the Host header,
// port included or not) and path (the decoded URL path), or nil and the
// status to answer: 404 for a path no site of the host serves, the
// UnknownHost status for a host no site serves.
func (m *Mux) Route(host, path string) (*Balancer, int) {
	rs, ok := m.routesOf(host)
	if !ok {
		return nil, m.unknown
	}
	for _, r := range rs {
		if r.prefix == "" {
			return r.b, 0
		}
		if strings.HasPrefix(path, r.prefix) {
			if len(path) == len(r.prefix) {
				return r.b, 0
			}
			switch path[len(r.prefix)] {
			case '/', ';':
				return r.b, 0
			}
		}
	}
	return nil, http.StatusNotFound
}

// routesOf returns the routes serving host; ok is false when no site
// serves it.
func (m *Mux) routesOf(host string) ([]muxRoute, bool) {
	if len(m.exact) > 0 || len(m.wildcard) > 0 {
		h := normalHost(stripPort(host))
		if rs, ok := m.exact[h]; ok {
			return rs, true
		}
		if i := strings.IndexByte(h, '.'); i > 0 {
			if rs, ok := m.wildcard[h[i+1:]]; ok {
				return rs, true
			}
		}
	}
	return m.any, len(m.any) > 0
}

// normalHost lowers the case of a host name and drops a final dot. It
// allocates only when the name has upper-case letters.
func normalHost(h string) string {
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// stripPort removes a ":port" from a Host value ("[::1]:80" → "[::1]").
func stripPort(h string) string {
	i := strings.LastIndexByte(h, ':')
	if i < 0 || strings.IndexByte(h[i:], ']') >= 0 {
		return h
	}
	return h[:i]
}

// notFound and misdirected are the bodies of the Mux's own answers.
const (
	notFound    = "404 Not Found: no balancer serves this path\n"
	misdirected = "421 Misdirected Request: no balancer serves this host\n"
)

// statusBody returns the body of the Mux's own answer with status.
func statusBody(status int) string {
	switch status {
	case http.StatusNotFound:
		return notFound
	case http.StatusMisdirectedRequest:
		return misdirected
	}
	return strconv.Itoa(status) + " " + http.StatusText(status) + ": no balancer serves this host\n"
}

// ServeHTTP hands the request to the balancer serving its host and path,
// or answers 404 or the UnknownHost status.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, body, ok := m.probe(r.Method, r.URL.Path)
	if !ok {
		var loc string
		if status, loc, ok = m.redirect(r.Method, r.Host, r.RequestURI); ok {
			body = redirectBody
			if loc != "" {
				w.Header().Set("Location", loc)
			} else {
				body = noHostBody
			}
		}
	}
	if !ok {
		var b *Balancer
		if b, status = m.Route(r.Host, r.URL.Path); b != nil {
			b.ServeHTTP(w, r)
			return
		}
		body = statusBody(status)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(body))
	}
}
