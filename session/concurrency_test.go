package session_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
)

// list is a read-modify-write value: requests append to it.
type list struct{ Items []string }

// appendItem is the ordinary read-modify-write of a cart: Get, append in
// place, saved at commit.
func appendItem(s *session.Session, item string) error {
	l, err := session.Get[*list](s, "list")
	if err != nil {
		return err
	}
	if l == nil {
		l = &list{}
		if err := s.Put("list", l); err != nil {
			return err
		}
	}
	l.Items = append(l.Items, item)
	return nil
}

// parallel sends n POSTs to url?i=<i> at once, with cookie, and returns
// their statuses.
func parallel(t *testing.T, url, cookie string, n int) []int {
	t.Helper()
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", url+"/?i="+strconv.Itoa(i), nil)
			req.Header.Set("Cookie", cookie)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	return codes
}

// TestExclusiveReadModifyWrite: parallel read-modify-writes of one value,
// in the default access mode, all succeed and none is lost: requests on one
// session run one after another, from their first access to their commit.
func TestExclusiveReadModifyWrite(t *testing.T) {
	const n = 90
	e := newEnv(t, session.Options{})
	var inside, most atomic.Int32
	srv := httptest.NewServer(e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		i := r.URL.Query().Get("i")
		if i == "start" {
			if err := s.Put("list", &list{}); err != nil {
				t.Error(err)
			}
			return
		}
		if _, err := s.ID(); err != nil { // the first access: waits for the session
			http.Error(w, err.Error(), session.StatusCode(err))
			return
		}
		in := inside.Add(1)
		for m := most.Load(); in > m && !most.CompareAndSwap(m, in); m = most.Load() {
		}
		err := appendItem(s, i)
		inside.Add(-1) // before the commit: the next request may start after it
		if err != nil {
			http.Error(w, err.Error(), session.StatusCode(err))
			return
		}
		io.WriteString(w, "ok")
	})))
	defer srv.Close()
	cookie := start(t, srv.URL)
	rec, got := allOK(t, e, srv.URL, cookie, n)
	slices.Sort(got.Items)
	var want []string
	for i := range n {
		want = append(want, strconv.Itoa(i))
	}
	slices.Sort(want)
	if !slices.Equal(got.Items, want) {
		t.Errorf("kept %d items of %d: %v", len(got.Items), n, got.Items)
	}
	if most.Load() != 1 {
		t.Errorf("%d requests ran inside the session at once, want 1", most.Load())
	}
	if rec.Version != 1+n {
		t.Errorf("version %d, want %d", rec.Version, 1+n)
	}
}

// TestOptimisticRequests sends simultaneous Optimistic requests on one
// session over real HTTP. Every request loads the same version before any
// commits (a barrier holds them). Writes to keys a request did not read
// all survive, and same-key blind writes resolve to one of them, counted;
// a request whose read is stale by its commit saves nothing and gets 409.
func TestOptimisticRequests(t *testing.T) {
	const n = 8
	tests := []struct {
		name      string
		read      bool // each request reads "shared" before writing it
		wantOK    int
		conflicts int
	}{
		{"blind writes", false, n, n - 1},
		{"read-modify-writes", true, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, session.Options{})
			var loaded sync.WaitGroup
			loaded.Add(n)
			srv := httptest.NewServer(e.m.Handler(session.Optimistic(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := session.From(r)
				i := r.URL.Query().Get("i")
				if i == "start" {
					if err := s.Put("shared", i); err != nil {
						t.Error(err)
					}
					return
				}
				if _, err := s.ID(); err != nil { // load
					t.Error(err)
				}
				if tt.read {
					if _, err := session.Get[string](s, "shared"); err != nil {
						t.Error(err)
					}
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
			}))))
			defer srv.Close()
			cookie := start(t, srv.URL)

			ok := 0
			for i, code := range parallel(t, srv.URL, cookie, n) {
				switch code {
				case 200:
					ok++
				case http.StatusConflict:
				default:
					t.Errorf("request %d: %d", i, code)
				}
			}
			rec, err := e.store.Load(t.Context(), idPart(cookie))
			if err != nil {
				t.Fatal(err)
			}
			kept := 0
			for i := 0; i < n; i++ {
				if got := string(rec.Values["own-"+strconv.Itoa(i)]); got == strconv.Quote(strconv.Itoa(i)) {
					kept++
				}
			}
			if ok != tt.wantOK || kept != ok {
				t.Errorf("%d answered 200, %d kept their own key; want %d", ok, kept, tt.wantOK)
			}
			if rec.Version != uint64(1+ok) {
				t.Errorf("version %d, want %d: one per successful commit", rec.Version, 1+ok)
			}
			if e.obs.conflicts != tt.conflicts {
				t.Errorf("%d conflicts counted, want %d", e.obs.conflicts, tt.conflicts)
			}
		})
	}
}

// TestOptimisticUpdate: Optimistic requests that change one value with
// Update all succeed and none is lost, however they interleave.
func TestOptimisticUpdate(t *testing.T) {
	const n = 32
	e := newEnv(t, session.Options{})
	srv := httptest.NewServer(e.m.Handler(session.Optimistic(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		i := r.URL.Query().Get("i")
		l, err := session.Update(s, "list", func(old list, _ bool) (list, error) {
			old.Items = append(old.Items, i)
			return old, nil
		})
		if err != nil {
			http.Error(w, err.Error(), session.StatusCode(err))
			return
		}
		fmt.Fprint(w, len(l.Items))
	}))))
	defer srv.Close()
	cookie := start(t, srv.URL)
	_, got := allOK(t, e, srv.URL, cookie, n)
	if len(got.Items) != n+1 { // "start" and the n
		t.Errorf("kept %d items, want %d: %v", len(got.Items), n+1, got.Items)
	}
}

// allOK sends n parallel POSTs with cookie to url, fails the test for
// every answer but 200, and returns the session afterwards with its "list".
func allOK(t *testing.T, e *env, url, cookie string, n int) (session.Record, list) {
	t.Helper()
	for i, code := range parallel(t, url, cookie, n) {
		if code != 200 {
			t.Errorf("request %d: %d", i, code)
		}
	}
	rec, err := e.store.Load(t.Context(), idPart(cookie))
	if err != nil {
		t.Fatal(err)
	}
	var got list
	if err := (session.JSON{}).Unmarshal(rec.Values["list"], &got); err != nil {
		t.Fatal(err)
	}
	return rec, got
}

// hold starts a request on cookie's session that takes the session's lock
// and keeps it until release is closed; it returns once the lock is held,
// and the request's response on done.
func hold(t *testing.T, e *env, cookie string, release <-chan struct{}, put bool) <-chan *http.Response {
	t.Helper()
	held := make(chan struct{})
	done := make(chan *http.Response, 1)
	go func() {
		done <- e.do(func(w http.ResponseWriter, r *http.Request) {
			s := session.From(r)
			if _, err := s.ID(); err != nil {
				t.Error(err)
			}
			close(held)
			<-release
			if put {
				if err := s.Put("k", "holder"); err != nil {
					t.Error(err)
				}
			}
		}, "POST", "/", cookie)
	}()
	<-held
	return done
}

// TestLockBounds: a waiter gives up after LockWait with 503 and Retry-After;
// a holder past LockHold loses the session to the next request and its
// commit fails; a read-only request does not wait; a panicking handler
// releases the session.
func TestLockBounds(t *testing.T) {
	t.Run("wait", func(t *testing.T) {
		e := newEnv(t, session.Options{LockWait: 20 * time.Millisecond})
		c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
		release := make(chan struct{})
		done := hold(t, e, c, release, false)
		var putErr error
		resp := e.do(func(w http.ResponseWriter, r *http.Request) {
			putErr = session.From(r).Put("k", "waiter")
			io.WriteString(w, "saved") // a careless handler: the Manager still answers 503
		}, "POST", "/", c)
		close(release)
		<-done
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("waiter: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if !errors.Is(putErr, session.ErrBusy) {
			t.Fatalf("Put while the session was busy: %v", putErr)
		}
		if got := e.value(c, "k"); got != `"v"` {
			t.Fatalf("k = %s after a refused request", got)
		}
	})
	t.Run("hold", func(t *testing.T) {
		e := newEnv(t, session.Options{LockHold: 20 * time.Millisecond})
		c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
		release := make(chan struct{})
		done := hold(t, e, c, release, true)
		resp := e.do(put(t, "k", "next"), "POST", "/", c) // takes the lock once the holder is past LockHold
		close(release)
		late := <-done
		if resp.StatusCode != 200 || late.StatusCode != http.StatusConflict {
			t.Fatalf("next request %d (want 200), hung holder %d (want 409)", resp.StatusCode, late.StatusCode)
		}
		if got := e.value(c, "k"); got != `"next"` {
			t.Fatalf("k = %s, want the next request's", got)
		}
	})
	t.Run("read-only", func(t *testing.T) {
		e := newEnv(t, session.Options{LockWait: time.Hour})
		c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
		release := make(chan struct{})
		done := hold(t, e, c, release, false)
		var putErr error
		resp := e.do(session.ReadOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := session.From(r)
			v, err := session.Get[string](s, "k")
			if err != nil {
				t.Error(err)
			}
			putErr = s.Put("k", "no")
			io.WriteString(w, v)
		})).ServeHTTP, "GET", "/", c)
		close(release)
		<-done
		if b := body(t, resp); resp.StatusCode != 200 || b != "v" {
			t.Fatalf("read-only request during a held lock: %d %q", resp.StatusCode, b)
		}
		if !errors.Is(putErr, session.ErrReadOnly) {
			t.Fatalf("Put in a read-only request: %v", putErr)
		}
	})
	t.Run("panic", func(t *testing.T) {
		e := newEnv(t, session.Options{LockWait: time.Hour})
		c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
		srv := httptest.NewServer(e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := session.From(r).Put("k", "panicked"); err != nil {
				t.Error(err)
			}
			panic(http.ErrAbortHandler) // net/http recovers it quietly
		})))
		defer srv.Close()
		req, _ := http.NewRequest("POST", srv.URL, nil)
		req.Header.Set("Cookie", c)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("the panicking handler answered %d", resp.StatusCode)
		}
		if resp := e.do(put(t, "k", "after"), "POST", "/", c); resp.StatusCode != 200 {
			t.Fatalf("request after a panic: %d", resp.StatusCode)
		}
		if got := e.value(c, "k"); got != `"after"` {
			t.Fatalf("k = %s", got)
		}
	})
}

// value returns the stored encoding of key in cookie's session.
func (e *env) value(cookie, key string) string {
	e.t.Helper()
	rec, err := e.store.Load(e.t.(*testing.T).Context(), idPart(cookie))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(rec.Values[key])
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
