package ajp

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/memstore"
)

// TestSecureCookie checks what the package doc promises: behind a web
// server the client reached over HTTPS (is_ssl), the session library sets
// the cookie's Secure attribute, with no trusted-proxy configuration.
func TestSecureCookie(t *testing.T) {
	store, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m, err := session.New(session.Options{Store: store, Route: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Put("k", "v"); err != nil {
			t.Error(err)
		}
	}))
	_, addr, _ := serve(t, h, Options{})
	for _, ssl := range []bool{true, false} {
		c := dial(t, addr)
		c.send(fwd{secret: testSecret, ssl: ssl}.packet())
		r := c.response()
		cookie := r.header.Get("Set-Cookie")
		if !strings.HasPrefix(cookie, "JSESSIONID=") || strings.Contains(cookie, "; Secure") != ssl {
			t.Errorf("is_ssl %v: Set-Cookie %q", ssl, cookie)
		}
	}
}
