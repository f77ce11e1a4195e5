package session_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/tetherlb/tether/session"
)

// TestConcurrentRequests sends simultaneous requests on one session over
// real HTTP, as tabs and AJAX calls do. Every request loads the same version
// before any commits (a barrier holds them), so each commit is concurrent
// with all the others: writes to different keys must all survive, and
// writes to one key must resolve to one of them and be counted.
func TestConcurrentRequests(t *testing.T) {
	const n = 8
	e := newEnv(t, session.Options{})
	var loaded sync.WaitGroup
	loaded.Add(n)
	srv := httptest.NewServer(e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		i := r.URL.Query().Get("i")
		if i == "start" {
			if err := s.Put("shared", i); err != nil {
				t.Error(err)
			}
			return
		}
		if _, err := session.Get[string](s, "shared"); err != nil { // load
			t.Error(err)
		}
		loaded.Done()
		loaded.Wait() // every request has loaded version 1 before any commits
		if err := s.Put("own-"+i, i); err != nil {
			t.Error(err)
		}
		if err := s.Put("shared", i); err != nil {
			t.Error(err)
		}
		io.WriteString(w, "ok") // commits
	})))
	defer srv.Close()
	cookie := start(t, srv.URL)

	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", srv.URL+"/?i="+strconv.Itoa(i), nil)
			req.Header.Set("Cookie", cookie)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || len(resp.Header.Values("Set-Cookie")) != 0 {
				t.Errorf("request %d: %d, Set-Cookie %q", i, resp.StatusCode, resp.Header.Values("Set-Cookie"))
			}
		}()
	}
	wg.Wait()

	rec, err := e.store.Load(t.Context(), idPart(cookie))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if got := string(rec.Values["own-"+strconv.Itoa(i)]); got != strconv.Quote(strconv.Itoa(i)) {
			t.Errorf("own-%d = %q: a concurrent request's write to its own key was lost", i, got)
		}
	}
	if rec.Version != 1+n {
		t.Errorf("version %d, want %d: one per commit", rec.Version, 1+n)
	}
	shared, _ := strconv.Unquote(string(rec.Values["shared"]))
	if i, err := strconv.Atoi(shared); err != nil || i < 0 || i >= n {
		t.Errorf("shared = %q, want one request's value", rec.Values["shared"])
	}
	if e.obs.conflicts != n-1 {
		t.Errorf("%d conflicts counted, want %d: every commit but the first wrote shared concurrently", e.obs.conflicts, n-1)
	}
}

// start creates a session on the server at url and returns its cookie.
func start(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/?i=start", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "JSESSIONID" {
			return fmt.Sprintf("%s=%s", c.Name, c.Value)
		}
	}
	t.Fatalf("no session cookie: %q", resp.Header.Values("Set-Cookie"))
	return ""
}
