package balancer

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRedirectHTTPS(t *testing.T) {
	probes := &Probes{ReadyPath: "/-/ready"}
	m443 := NewSiteMux(nil, MuxOptions{RedirectHTTPS: 443, Probes: probes})
	m8443 := NewSiteMux(nil, MuxOptions{RedirectHTTPS: 8443})
	tests := []struct {
		m                    *Mux
		method, host, target string
		status               int
		location             string
	}{
		{m443, "GET", "shop.example.com", "/cart?x=1", 301, "https://shop.example.com/cart?x=1"},
		{m443, "HEAD", "shop.example.com:80", "/", 301, "https://shop.example.com/"},
		{m443, "POST", "shop.example.com", "/order", 308, "https://shop.example.com/order"},
		{m8443, "GET", "127.0.0.1:8080", "/a;jsessionid=x", 301, "https://127.0.0.1:8443/a;jsessionid=x"},
		{m443, "GET", "[::1]:80", "/", 301, "https://[::1]/"},
		{m443, "GET", "shop.example.com", "http://other.example/x?y", 301, "https://shop.example.com/x?y"},
		{m443, "OPTIONS", "shop.example.com", "*", 308, "https://shop.example.com/"},
		{m443, "GET", "", "/", 400, ""},
		{m443, "GET", "evil.com/x", "/", 400, ""},
		{m443, "GET", "a\r\nSet-Cookie: x", "/", 400, ""},
	}
	for _, tt := range tests {
		st, loc, ok := tt.m.redirect(tt.method, tt.host, tt.target)
		if !ok || st != tt.status || loc != tt.location {
			t.Errorf("%s %s %s: %d %q %v, want %d %q", tt.method, tt.host, tt.target, st, loc, ok, tt.status, tt.location)
		}
	}
	if _, _, ok := NewMux(nil).redirect("GET", "a", "/"); ok {
		t.Error("a Mux without RedirectHTTPS redirected")
	}
	// The probes are answered, not redirected.
	w := httptest.NewRecorder()
	m443.ServeHTTP(w, httptest.NewRequest("GET", "http://shop.example.com/-/ready", nil))
	if w.Code != 200 {
		t.Fatalf("probe on a redirecting listener: %d", w.Code)
	}
	w = httptest.NewRecorder()
	m443.ServeHTTP(w, httptest.NewRequest("GET", "http://shop.example.com/x", nil))
	if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "https://shop.example.com/x" {
		t.Fatalf("got %d %q", w.Code, w.Header().Get("Location"))
	}
}
