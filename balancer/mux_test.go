package balancer

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMuxMatchesWholeSegments(t *testing.T) {
	app, root, admin := &Balancer{}, &Balancer{}, &Balancer{}
	names := map[*Balancer]string{app: "/app", root: "/", admin: "/app/admin"}
	m := NewMux(map[string]*Balancer{"/app": app, "/": root, "/app/admin/": admin})
	tests := []struct {
		path string
		want *Balancer
	}{
		{"/app", app}, {"/app/", app}, {"/app/x", app}, {"/app;jsessionid=A.n1", app},
		{"/apple", root}, {"/", root}, {"/app/admin", admin}, {"/app/admin/x", admin}, {"/app/administrator", app},
		{"*", root}, {"", root},
	}
	for _, tt := range tests {
		if got := m.Match(tt.path); got != tt.want {
			t.Errorf("Match(%q) = %s, want %s", tt.path, names[got], names[tt.want])
		}
	}
	if NewMux(map[string]*Balancer{"/app": app}).Match("/other") != nil {
		t.Error("unmatched path matched")
	}
}

func TestMuxAnswers404(t *testing.T) {
	w := httptest.NewRecorder()
	NewMux(map[string]*Balancer{"/app": {}}).ServeHTTP(w, httptest.NewRequest("GET", "/other", nil))
	if w.Code != http.StatusNotFound || w.Body.String() != notFound {
		t.Fatalf("got %d %q", w.Code, w.Body.String())
	}
}

func TestMuxRoutesByHost(t *testing.T) {
	shop, shopAPI, wild, def, api := &Balancer{}, &Balancer{}, &Balancer{}, &Balancer{}, &Balancer{}
	names := map[*Balancer]string{shop: "shop", shopAPI: "shop /api", wild: "*.example.com", def: "default", api: "api.example.org /v1", nil: "none"}
	sites := []Site{
		{Hosts: []string{"shop.example.com", "www.shop.example.com"}, Path: "/", Balancer: shop},
		{Hosts: []string{"Shop.Example.com"}, Path: "/api", Balancer: shopAPI},
		{Hosts: []string{"*.example.com"}, Balancer: wild},
		{Hosts: []string{"api.example.org"}, Path: "/v1", Balancer: api},
		{Path: "/", Balancer: def},
	}
	tests := []struct {
		mux        string
		host, path string
		want       *Balancer
		status     int
	}{
		{"default", "shop.example.com", "/", shop, 0},
		{"default", "www.shop.example.com", "/cart", shop, 0},
		{"default", "SHOP.example.com.:8443", "/api/x", shopAPI, 0},
		{"default", "shop.example.com", "/apiary", shop, 0},
		{"default", "a.example.com", "/", wild, 0},
		{"default", "a.example.com:80", "/x", wild, 0},
		{"default", "a.b.example.com", "/", def, 0},
		{"default", "example.com", "/", def, 0},
		{"default", "other.org", "/x", def, 0},
		{"default", "[::1]:8080", "/", def, 0},
		{"default", "", "/", def, 0},
		{"default", "api.example.org", "/v1/users", api, 0},
		{"default", "api.example.org", "/", nil, http.StatusNotFound}, // a host's sites only
		{"no default", "other.org", "/", nil, http.StatusMisdirectedRequest},
		{"no default", "", "/", nil, http.StatusMisdirectedRequest},
		{"no default", "a.example.com", "/", wild, 0},
		{"404 for unknown hosts", "other.org", "/", nil, http.StatusNotFound},
	}
	muxes := map[string]*Mux{
		"default":               NewSiteMux(sites, MuxOptions{}),
		"no default":            NewSiteMux(sites[:4], MuxOptions{}),
		"404 for unknown hosts": NewSiteMux(sites[:4], MuxOptions{UnknownHost: http.StatusNotFound}),
	}
	for _, tt := range tests {
		b, st := muxes[tt.mux].Route(tt.host, tt.path)
		if b != tt.want || st != tt.status {
			t.Errorf("%s: Route(%q, %q) = %s %d, want %s %d", tt.mux, tt.host, tt.path, names[b], st, names[tt.want], tt.status)
		}
	}
}

func TestMuxAnswers421ForUnknownHosts(t *testing.T) {
	m := NewSiteMux([]Site{{Hosts: []string{"a.example"}, Balancer: &Balancer{}}}, MuxOptions{})
	w := httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest("GET", "http://b.example/", nil))
	if w.Code != http.StatusMisdirectedRequest || w.Body.String() != misdirected {
		t.Fatalf("got %d %q", w.Code, w.Body.String())
	}
}

func TestMuxRoutingDoesNotAllocate(t *testing.T) {
	b := &Balancer{}
	m := NewSiteMux([]Site{{Hosts: []string{"shop.example.com"}, Path: "/app", Balancer: b}, {Hosts: []string{"*.example.com"}, Balancer: b}}, MuxOptions{})
	for _, host := range []string{"shop.example.com:8080", "x.example.com", "other"} {
		if n := testing.AllocsPerRun(100, func() { m.Route(host, "/app/x") }); n != 0 {
			t.Errorf("%s: %v allocations", host, n)
		}
	}
}
