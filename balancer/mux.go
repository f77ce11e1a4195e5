package balancer

import (
	"net/http"
	"sort"
	"strings"
)

// Mux sends each request to the balancer with the longest path prefix
// matching it on a whole segment: "/app" serves "/app", "/app/x" and
// "/app;jsessionid=…", not "/apple"; "/" serves everything. Both engines
// dispatch with it. A Mux is immutable and safe for concurrent use.
type Mux struct {
	routes []muxRoute // longest prefix first
}

type muxRoute struct {
	prefix string // without a trailing slash; "" for "/"
	b      *Balancer
}

// NewMux returns a Mux over routes, a map from path prefix to balancer.
func NewMux(routes map[string]*Balancer) *Mux {
	m := &Mux{}
	for p, b := range routes {
		m.routes = append(m.routes, muxRoute{prefix: strings.TrimSuffix(p, "/"), b: b})
	}
	sort.Slice(m.routes, func(i, j int) bool { return len(m.routes[i].prefix) > len(m.routes[j].prefix) })
	return m
}

// Match returns the balancer serving path (the decoded URL path), or nil.
func (m *Mux) Match(path string) *Balancer {
	for _, r := range m.routes {
		if r.prefix == "" {
			return r.b
		}
		if strings.HasPrefix(path, r.prefix) {
			if len(path) == len(r.prefix) {
				return r.b
			}
			switch path[len(r.prefix)] {
			case '/', ';':
				return r.b
			}
		}
	}
	return nil
}

// notFound is the body of the answer to a path no balancer serves.
const notFound = "404 Not Found: no balancer serves this path\n"

// ServeHTTP hands the request to the balancer serving its path, or
// answers 404.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b := m.Match(r.URL.Path); b != nil {
		b.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(notFound))
}
