package session_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tetherlb/tether/session"
)

// FuzzHandler sends arbitrary Cookie headers and paths through the
// Manager: it must never panic, never fail the request, never let anyone
// read the one live session without presenting its exact id, and only ever
// set cookies it issued or expire them.
func FuzzHandler(f *testing.F) {
	f.Add("JSESSIONID=AAAAAAAAAAAAAAAAAAAAAA.n1", "/", false)
	f.Add("JSESSIONID=x; JSESSIONID=\"quoted.n1\"; a=b", "/a;jsessionid=AAAAAAAAAAAAAAAAAAAAAA.n1/b", true)
	f.Add(";;=;JSESSIONID", "/;jsessionid=;jsessionid=..", false)
	f.Add("JSESSIONID=AAAAAAAAAAAAAAAAAAAAAA.n1.n1", "/%3Bjsessionid=x", true)
	e := newEnv(f, session.Options{URLRewriting: true})
	live := strings.TrimPrefix(sessionCookie(f, e.do(put(f, "k", "secret"), "POST", "/")), "JSESSIONID=")
	f.Fuzz(func(t *testing.T, cookie, path string, write bool) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path, r.URL.RawPath = path, ""
		r.Header.Set("Cookie", cookie)
		var read string
		w := httptest.NewRecorder()
		e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := session.From(r)
			v, err := session.Get[string](s, "k")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			read = v
			if write && v == "" {
				if err := s.Put("other", 1); err != nil {
					t.Fatalf("Put: %v", err)
				}
			}
		})).ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
		if read == "secret" && !strings.Contains(cookie, live) && !strings.Contains(path, live) {
			t.Fatalf("read the live session without presenting %s", live)
		}
		for _, sc := range w.Result().Header.Values("Set-Cookie") {
			c, err := http.ParseSetCookie(sc)
			if err != nil {
				t.Fatalf("unparseable Set-Cookie %q: %v", sc, err)
			}
			if c.MaxAge < 0 {
				continue
			}
			id, rt, ok := strings.Cut(c.Value, ".")
			if !ok || rt != "n1" || len(id) != 22 {
				t.Fatalf("Set-Cookie %q: not an id this node issued", sc)
			}
			if err := e.store.Delete(t.Context(), id); err != nil { // keep the store small
				t.Fatalf("the session of Set-Cookie %q is not stored: %v", sc, err)
			}
		}
	})
}
