package session_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/memstore"
)

// TestRenewRacingLogout: a login renews the id while another tab logs out.
// The session must not survive under the new id.
func TestRenewRacingLogout(t *testing.T) {
	e := newEnv(t, session.Options{})
	c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
	var loaded sync.WaitGroup
	loaded.Add(1)
	release := make(chan struct{})
	done := make(chan *http.Response)
	go func() {
		done <- e.do(func(w http.ResponseWriter, r *http.Request) {
			s := session.From(r)
			if err := s.RenewID(); err != nil {
				t.Error(err)
			}
			loaded.Done()
			<-release
		}, "POST", "/login", c)
	}()
	loaded.Wait()
	// Ended elsewhere: on another node, or by the store, neither of which
	// waits for this node's lock.
	if err := e.store.Delete(t.Context(), idPart(c)); err != nil {
		t.Fatal(err)
	}
	close(release)
	resp := <-done
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("renewal after a concurrent logout: %d, want 409", resp.StatusCode)
	}
	checkCookie(t, resp, "expire", c, "Path=/")
	if n := e.sessions(); n != 0 {
		t.Fatalf("%d sessions survive the logout", n)
	}
}

func TestRenewIDWithoutStoredSession(t *testing.T) {
	e := newEnv(t, session.Options{})
	var before, after string
	resp := e.do(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		if err := s.RenewID(); err != nil { // no session: nothing to do
			t.Error(err)
		}
		if err := s.Put("k", "v"); err != nil {
			t.Error(err)
		}
		before, _ = s.ID()
		if err := s.RenewID(); err != nil { // a new session: just another id
			t.Error(err)
		}
		after, _ = s.ID()
	}, "POST", "/")
	if before == after || sessionCookie(t, resp) != "JSESSIONID="+after || e.sessions() != 1 {
		t.Fatalf("ids %q then %q, cookie %q, %d sessions", before, after, setCookies(resp), e.sessions())
	}
}

// TestWriterPaths checks that every way of starting a response commits
// first, and fails after a failed commit.
func TestWriterPaths(t *testing.T) {
	tests := []struct {
		name  string
		write func(w http.ResponseWriter) error
	}{
		{"io.Copy uses ReadFrom", func(w http.ResponseWriter) error {
			_, err := io.Copy(w, strings.NewReader("body"))
			return err
		}},
		{"Flush", func(w http.ResponseWriter) error {
			w.(http.Flusher).Flush()
			return nil
		}},
		{"ResponseController.Flush", func(w http.ResponseWriter) error {
			return http.NewResponseController(w).Flush()
		}},
		{"WriteHeader", func(w http.ResponseWriter) error {
			w.WriteHeader(http.StatusAccepted)
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, session.Options{})
			resp := e.do(func(w http.ResponseWriter, r *http.Request) {
				if err := session.From(r).Put("k", "v"); err != nil {
					t.Fatal(err)
				}
				if err := tt.write(w); err != nil {
					t.Fatal(err)
				}
				if err := session.From(r).Put("k", "late"); !errors.Is(err, session.ErrCommitted) {
					t.Fatalf("Put after %s: %v", tt.name, err)
				}
			}, "POST", "/")
			c := sessionCookie(t, resp)
			if got := body(t, e.do(get(t, "k"), "GET", "/", c)); got != "v" {
				t.Fatalf("stored %q", got)
			}
		})
		t.Run(tt.name+" after a failed commit", func(t *testing.T) {
			e, fs := newFailing(t, memstore.Options{})
			fs.fail[session.OpSave] = errBroken
			resp := e.do(func(w http.ResponseWriter, r *http.Request) {
				if err := session.From(r).Put("k", "v"); err != nil {
					t.Fatal(err)
				}
				_ = tt.write(w)
				if _, err := w.Write([]byte("more")); !errors.Is(err, session.ErrStore) {
					t.Fatalf("Write after a failed commit: %v", err)
				}
			}, "POST", "/")
			if resp.StatusCode != 503 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
}

// TestHijackCommits checks that hijacking the connection (a WebSocket
// upgrade) saves the session first.
func TestHijackCommits(t *testing.T) {
	e := newEnv(t, session.Options{})
	c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
	srv := httptest.NewServer(e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Put("k", "upgraded"); err != nil {
			t.Error(err)
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
		buf.Flush()
	})))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Cookie", c)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(bufio.NewReader(resp.Body)); string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
	resp.Body.Close()
	if got := body(t, e.do(get(t, "k"), "GET", "/", c)); got != "upgraded" {
		t.Fatalf("stored %q after hijack", got)
	}
}

// notReady is a store still receiving state.
type notReady struct{ session.Store }

func (notReady) Ready() error { return errors.New("receiving state") }

func TestManagerAccessors(t *testing.T) {
	e := newEnv(t, session.Options{Route: "node-1", Cookie: session.CookieOptions{Name: "SID"}})
	if e.m.Route() != "node-1" || e.m.CookieName() != "SID" || e.m.Ready() != nil {
		t.Fatalf("route %q, cookie %q, ready %v", e.m.Route(), e.m.CookieName(), e.m.Ready())
	}
	e.do(put(t, "k", "v"), "POST", "/")
	if st, ok := e.m.Stats(); !ok || st.Sessions != 1 {
		t.Fatalf("stats %+v, %v", st, ok)
	}
	nr := newEnv(t, session.Options{Store: notReady{e.store}})
	if nr.m.Ready() == nil {
		t.Fatal("a store that is not ready made a ready Manager")
	}
	if _, ok := nr.m.Stats(); ok {
		t.Fatal("stats from a store that has none")
	}
}

func TestLogoutOutsideHandler(t *testing.T) {
	e := newEnv(t, session.Options{Cookie: session.CookieOptions{Path: "/app"}})
	r := httptest.NewRequest("POST", "/app/logout", nil)
	r.Header.Set("Cookie", "JSESSIONID=AAAAAAAAAAAAAAAAAAAAAA.n1")
	w := httptest.NewRecorder()
	e.m.Logout(w, r, "/app/")
	resp := w.Result()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d", resp.StatusCode)
	}
	checkCookie(t, resp, "expire", "", "Path=/app")
	if _, ok := session.FromContext(context.Background()); ok {
		t.Fatal("a session in an empty context")
	}
}

func TestReasonsAndRejectionsNamed(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range []string{
		session.ReasonInvalidated.String(), session.ReasonIdleTimeout.String(), session.ReasonLifetime.String(),
		session.ReasonEvicted.String(), session.RejectMalformed.String(), session.RejectUnknown.String(),
		session.RejectExpired.String(), session.RejectForeign.String(),
	} {
		if seen[s] || strings.Contains(s, "unknown_") || s == "" {
			t.Errorf("label %q repeated or unnamed", s)
		}
		seen[s] = true
	}
	var o session.Observer = session.NopObserver{}
	o.SessionCreated()
	o.StoreError(session.OpLoad, errBroken)
}
