package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/memstore"
	"github.com/tetherlb/tether/session/sessiontest"
)

// newFailing returns an env whose store is a memstore that fails the
// operations set in the returned failingStore's map.
func newFailing(t *testing.T, mo memstore.Options) (*env, *failingStore) {
	t.Helper()
	clock := sessiontest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	mo.JanitorInterval, mo.Now = -1, clock.Now
	st, err := memstore.New(mo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs := &failingStore{Store: st, fail: map[session.Op]error{}}
	e := newEnv(t, session.Options{Store: fs, Now: clock.Now})
	e.store, e.clock = st, clock
	return e, fs
}

// TestCommitFailureReplacesResponse checks that when the store cannot save,
// the client gets a clear error instead of the page it would have got, and
// the handler learns it from Write.
func TestCommitFailureReplacesResponse(t *testing.T) {
	tests := []struct {
		name       string
		mo         memstore.Options
		prepare    func(*env, *failingStore) []string // returns cookies to send
		wantStatus int
		wantBody   string
	}{
		{"store fails on save", memstore.Options{}, func(e *env, fs *failingStore) []string {
			c := sessionCookie(e.t, e.do(put(e.t, "k", "v"), "POST", "/"))
			fs.fail[session.OpSave] = errBroken
			return []string{c}
		}, 503, "session store is unavailable"},
		{"store full", memstore.Options{MaxSessions: 1}, func(e *env, fs *failingStore) []string {
			sessionCookie(e.t, e.do(put(e.t, "k", "v"), "POST", "/"))
			return nil
		}, 503, "session store is full"},
		{"store times out", memstore.Options{}, func(e *env, fs *failingStore) []string {
			fs.fail[session.OpSave] = fmt.Errorf("replica did not ack: %w", context.DeadlineExceeded)
			return nil
		}, 503, "session store is unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, fs := newFailing(t, tt.mo)
			cookies := tt.prepare(e, fs)
			var writeErr error
			resp := e.do(func(w http.ResponseWriter, r *http.Request) {
				if err := session.From(r).Put("k", "changed"); err != nil {
					t.Fatal(err)
				}
				w.Header().Set("Content-Type", "application/json")
				_, writeErr = io.WriteString(w, `{"saved":true}`)
			}, "POST", "/", cookies...)
			b := body(t, resp)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(b, tt.wantBody) || strings.Contains(b, "saved") {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, b, tt.wantStatus, tt.wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Fatalf("Content-Type %q: the handler's header leaked into the error", ct)
			}
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			if writeErr == nil || session.StatusCode(writeErr) != tt.wantStatus {
				t.Fatalf("the handler's Write returned %v", writeErr)
			}
			if len(cookies) == 0 && len(setCookies(resp)) != 0 {
				t.Fatalf("Set-Cookie %q for a session that was not stored", setCookies(resp))
			}
			if e.obs.errors[session.OpSave] != 1 {
				t.Fatalf("store errors observed: %v", e.obs.errors)
			}
		})
	}
}

// TestFailureLogLine: the line logged for a commit that failed names the
// error, and each attribute once: the node's route is the caller's
// logger's (tether cart's logger says route=), not repeated.
func TestFailureLogLine(t *testing.T) {
	st, err := memstore.New(memstore.Options{JanitorInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs := &failingStore{Store: st, fail: map[session.Op]error{session.OpSave: errBroken}}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil)).With("route", "n1")
	e := newEnv(t, session.Options{Store: fs, Logger: log})
	e.do(put(t, "k", "v"), "POST", "/")
	line := buf.String()
	if !strings.Contains(line, "session not committed") || !strings.Contains(line, errBroken.Error()) {
		t.Fatalf("log %q", line)
	}
	for _, attr := range []string{"route=", "path=", "err="} {
		if n := strings.Count(line, " "+attr); n != 1 {
			t.Errorf("%s %d times in %q", attr, n, line)
		}
	}
}

// TestSessionEndedUnderRequest: a request loads the session, another logs
// out, then the first commits a change. The change cannot be saved (the
// session must not come back to life after a logout): 409, cookie expired.
func TestSessionEndedUnderRequest(t *testing.T) {
	e := newEnv(t, session.Options{})
	c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
	loaded, release := make(chan struct{}), make(chan struct{})
	done := make(chan *http.Response)
	go func() {
		done <- e.do(func(w http.ResponseWriter, r *http.Request) {
			s := session.From(r)
			if _, err := session.Get[string](s, "k"); err != nil {
				t.Error(err)
			}
			close(loaded)
			<-release
			if err := s.Put("k", "too late"); err != nil {
				t.Error(err)
			}
		}, "POST", "/", c)
	}()
	<-loaded
	// Ended elsewhere: on another node, or by the store, neither of which
	// waits for this node's lock.
	if err := e.store.Delete(t.Context(), idPart(c)); err != nil {
		t.Fatal(err)
	}
	close(release)
	resp := <-done
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body(t, resp), "ended") {
		t.Fatalf("status %d, want 409", resp.StatusCode)
	}
	checkCookie(t, resp, "expire", c, "Path=/")
	if e.sessions() != 0 {
		t.Fatal("the logged-out session came back")
	}
}

func TestLoadFailure(t *testing.T) {
	e, fs := newFailing(t, memstore.Options{})
	c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
	fs.fail[session.OpLoad] = errBroken
	var getErr, putErr error
	resp := e.do(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		_, getErr = session.Get[string](s, "k")
		putErr = s.Put("k", "x")
		http.Error(w, "sorry", session.StatusCode(getErr))
	}, "GET", "/", c)
	if !errors.Is(getErr, session.ErrStore) || !errors.Is(getErr, errBroken) || !errors.Is(putErr, errBroken) {
		t.Fatalf("Get: %v; Put: %v", getErr, putErr)
	}
	if resp.StatusCode != 503 || len(setCookies(resp)) != 0 {
		t.Fatalf("%d, Set-Cookie %q: a store failure must not expire a session that may be fine", resp.StatusCode, setCookies(resp))
	}
}

func TestInvalidateFailureKeepsSession(t *testing.T) {
	e, fs := newFailing(t, memstore.Options{})
	c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
	fs.fail[session.OpDelete] = errBroken
	resp := e.do(func(w http.ResponseWriter, r *http.Request) { e.m.Logout(w, r, "/") }, "POST", "/logout", c)
	if resp.StatusCode != 503 || len(setCookies(resp)) != 0 {
		t.Fatalf("%d, Set-Cookie %q; want 503 and the cookie kept", resp.StatusCode, setCookies(resp))
	}
	if e.sessions() != 1 {
		t.Fatal("session gone")
	}
	if _, destroyed := e.lis.snapshot(); len(destroyed) != 0 {
		t.Fatalf("destroyed fired for a session that lives: %v", destroyed)
	}
}

// TestCommitBeforeFirstByte checks over real HTTP that a streamed response
// carries the cookie, and that changes after the first byte are refused.
func TestCommitBeforeFirstByte(t *testing.T) {
	e := newEnv(t, session.Options{})
	var late error
	srv := httptest.NewServer(e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		if err := s.Put("k", "v"); err != nil {
			t.Error(err)
		}
		if err := http.NewResponseController(w).Flush(); err != nil { // headers go out now
			t.Error(err)
		}
		late = s.Put("k", "late")
		io.WriteString(w, "streamed")
	})))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := sessionCookie(t, resp)
	if b := body(t, resp); b != "streamed" { // the handler has returned
		t.Fatalf("body %q", b)
	}
	if !errors.Is(late, session.ErrCommitted) {
		t.Fatalf("Put after the first byte: %v, want ErrCommitted", late)
	}
	if got := body(t, e.do(get(t, "k"), "GET", "/", c)); got != "v" {
		t.Fatalf("stored %q", got)
	}
}

func TestInformationalStatusDoesNotCommit(t *testing.T) {
	e := newEnv(t, session.Options{})
	srv := httptest.NewServer(e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		if err := session.From(r).Put("k", "v"); err != nil {
			t.Errorf("Put after 103: %v", err)
		}
		w.WriteHeader(http.StatusCreated)
	})))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d", resp.StatusCode)
	}
	sessionCookie(t, resp)
}

func TestErrorHandlerOption(t *testing.T) {
	now := func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }
	st, _ := memstore.New(memstore.Options{MaxSessions: 1, JanitorInterval: -1, Now: now})
	t.Cleanup(func() { st.Close() })
	var got error
	e := newEnv(t, session.Options{Store: st, Now: now, ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		w.WriteHeader(599)
	}})
	e.do(put(t, "k", "v"), "POST", "/")
	resp := e.do(put(t, "k", "v"), "POST", "/")
	if resp.StatusCode != 599 || !errors.Is(got, session.ErrStoreFull) {
		t.Fatalf("status %d, error %v", resp.StatusCode, got)
	}
}

func TestStatusCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 200},
		{fmt.Errorf("x: %w", session.ErrGone), 409},
		{fmt.Errorf("x: %w", session.ErrStoreFull), 503},
		{fmt.Errorf("x: %w: %w", session.ErrStore, errBroken), 503},
		{context.DeadlineExceeded, 503},
		{fmt.Errorf("x: %w", session.ErrTooLarge), 500},
		{fmt.Errorf("x: %w", session.ErrEncoding), 500},
		{errors.New("other"), 500},
	}
	for _, tt := range tests {
		if got := session.StatusCode(tt.err); got != tt.want {
			t.Errorf("StatusCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// ctxStore records the context its Save gets, and blocks until it is done
// when block is set.
type ctxStore struct {
	session.Store
	block bool
	err   error // ctx.Err() when Save was called
}

func (c *ctxStore) Save(ctx context.Context, d session.Delta) (session.SaveResult, error) {
	c.err = ctx.Err()
	if c.block {
		<-ctx.Done()
		return session.SaveResult{}, fmt.Errorf("waiting for a replica: %w", ctx.Err())
	}
	return c.Store.Save(ctx, d)
}

// TestStoreContext checks the context store calls get: not cancelled when
// the client hangs up, bounded by StoreTimeout when set.
func TestStoreContext(t *testing.T) {
	t.Run("client gone", func(t *testing.T) {
		e := newEnv(t, session.Options{})
		cs := &ctxStore{Store: e.store}
		e = newEnv(t, session.Options{Store: cs, Now: e.clock.Now})
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the client hung up before the commit
		r := httptest.NewRequest("POST", "/", nil).WithContext(ctx)
		e.m.Handler(put(t, "k", "v")).ServeHTTP(httptest.NewRecorder(), r)
		if cs.err != nil {
			t.Fatalf("Save got a cancelled context: %v", cs.err)
		}
	})
	t.Run("StoreTimeout", func(t *testing.T) {
		e := newEnv(t, session.Options{})
		cs := &ctxStore{Store: e.store, block: true}
		e = newEnv(t, session.Options{Store: cs, Now: e.clock.Now, StoreTimeout: time.Millisecond})
		resp := e.do(put(t, "k", "v"), "POST", "/")
		if resp.StatusCode != 503 || len(setCookies(resp)) != 0 {
			t.Fatalf("a store past StoreTimeout: %d, Set-Cookie %q", resp.StatusCode, setCookies(resp))
		}
	})
}

// TestCarelessHandlerCannotClaimAFailedChange: a handler that ignores the
// error of an Update or an Invalidate the store refused, and answers 200,
// is overruled: the client gets the store's error, never a 200 over a
// change that was not made (or may not have been).
func TestCarelessHandlerCannotClaimAFailedChange(t *testing.T) {
	tests := []struct {
		name   string
		op     session.Op
		change func(s *session.Session)
	}{
		{"update", session.OpSave, func(s *session.Session) {
			_, _ = session.Update(s, "k", func(old string, _ bool) (string, error) { return old + "!", nil })
		}},
		{"invalidate", session.OpDelete, func(s *session.Session) { _ = s.Invalidate() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, fs := newFailing(t, memstore.Options{})
			c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
			fs.fail[tt.op] = errBroken
			resp := e.do(session.Optimistic(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tt.change(session.From(r))
				io.WriteString(w, "done") // the error ignored
			})).ServeHTTP, "POST", "/", c)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", resp.StatusCode)
			}
		})
	}
}
