package session_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tetherlb/tether/session"
)

// TestURLRewriting checks ";jsessionid=" support: off by default, and when
// on, the id is taken from the path, the path is cleaned for the router,
// and EncodeURL adds the id only where it is needed and safe.
func TestURLRewriting(t *testing.T) {
	for _, on := range []bool{false, true} {
		e := newEnv(t, session.Options{URLRewriting: on})
		c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
		id := strings.TrimPrefix(c, "JSESSIONID=")
		var path, value, encoded, foreign string
		e.do(func(w http.ResponseWriter, r *http.Request) {
			s := session.From(r)
			path = r.URL.Path
			value, _ = session.Get[string](s, "k")
			encoded = s.EncodeURL("/next?x=1#top")
			foreign = s.EncodeURL("https://other.example/next")
		}, "GET", "/page;jsessionid="+id+"?q=1")
		if !on {
			if value != "" || path != "/page;jsessionid="+id || encoded != "/next?x=1#top" {
				t.Fatalf("off: value %q, path %q, EncodeURL %q", value, path, encoded)
			}
			continue
		}
		if value != "v" || path != "/page" {
			t.Fatalf("on: value %q, path %q; want the session and the path without the parameter", value, path)
		}
		if want := "/next;jsessionid=" + id + "?x=1#top"; encoded != want {
			t.Fatalf("EncodeURL = %q, want %q", encoded, want)
		}
		if foreign != "https://other.example/next" {
			t.Fatalf("EncodeURL leaked the id to another host: %q", foreign)
		}
		// A client sending the cookie keeps cookies: no id in its URLs.
		resp := e.do(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, session.From(r).EncodeURL("/next"))
		}, "GET", "/", c)
		if got := body(t, resp); got != "/next" {
			t.Fatalf("EncodeURL for a cookie client = %q", got)
		}
	}
}

func TestEncodeURLNewSession(t *testing.T) {
	e := newEnv(t, session.Options{URLRewriting: true})
	var before, after string
	e.do(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		before = s.EncodeURL("/a")
		if err := s.Put("k", "v"); err != nil {
			t.Fatal(err)
		}
		after = s.EncodeURL("/a;jsessionid=stale/b")
	}, "POST", "/")
	if before != "/a" || !strings.HasPrefix(after, "/a/b;jsessionid=") || !strings.HasSuffix(after, ".n1") {
		t.Fatalf("EncodeURL before a session %q, after %q", before, after)
	}
}
