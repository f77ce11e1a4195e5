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
