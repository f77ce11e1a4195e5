package app

import (
	"net/http"
	"sort"
	"strings"
)

// router sends each request to the balancer with the longest path prefix
// matching it on a whole segment ("/app" serves "/app", "/app/x" and
// "/app;jsessionid=…", not "/apple").
type router struct {
	routes []pathRoute // longest prefix first
}

type pathRoute struct {
	prefix string
	h      http.Handler
}

func newRouter(routes map[string]http.Handler) *router {
	r := &router{}
	for p, h := range routes {
		r.routes = append(r.routes, pathRoute{prefix: strings.TrimSuffix(p, "/"), h: h})
	}
	sort.Slice(r.routes, func(i, j int) bool { return len(r.routes[i].prefix) > len(r.routes[j].prefix) })
	return r
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := rt.match(r.URL.Path); h != nil {
		h.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte("404 Not Found: no balancer serves this path\n"))
}

func (rt *router) match(path string) http.Handler {
	for _, r := range rt.routes {
		if r.prefix == "" {
			return r.h
		}
		if strings.HasPrefix(path, r.prefix) {
			if len(path) == len(r.prefix) {
				return r.h
			}
			switch path[len(r.prefix)] {
			case '/', ';':
				return r.h
			}
		}
	}
	return nil
}
