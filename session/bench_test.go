package session_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/memstore"
)

// discard is a ResponseWriter that keeps nothing, so that the benchmark
// measures the session, not a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// benchSession creates a session holding 5 small values and returns the
// Manager and a request carrying its cookie.
func benchSession(b *testing.B, m *session.Manager) *http.Request {
	w := httptest.NewRecorder()
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		for i, v := range []any{"alice", 42, true, []string{"apple", "pear"}, map[string]int{"theme": 2}} {
			if err := s.Put("k"+strconv.Itoa(i), v); err != nil {
				b.Fatal(err)
			}
		}
	})).ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "theme=dark; "+w.Result().Header.Get("Set-Cookie"))
	return r
}

func benchManager(b *testing.B, touch bool) *session.Manager {
	st, err := memstore.New(memstore.Options{JanitorInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	o := session.Options{Store: st, Route: "n1"}
	if touch {
		o.TouchInterval = -1
	}
	m, err := session.New(o)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkLoadCommit measures one request's session work through the
// middleware — parse the cookie, load from a memstore, decode, commit — on
// a session of 5 small values (a string, an int, a bool, a 2-element slice,
// a 1-entry map).
func BenchmarkLoadCommit(b *testing.B) {
	cases := []struct {
		name    string
		touch   bool
		handler func(*session.Session) error
	}{
		{"read-1-no-touch", false, func(s *session.Session) error {
			_, err := session.Get[string](s, "k0")
			return err
		}},
		{"read-1-touch", true, func(s *session.Session) error {
			_, err := session.Get[string](s, "k0")
			return err
		}},
		{"read-5", false, func(s *session.Session) error {
			_, err := session.Get[string](s, "k0")
			_, _ = session.Get[int](s, "k1")
			_, _ = session.Get[bool](s, "k2")
			_, _ = session.Get[[]string](s, "k3")
			_, _ = session.Get[map[string]int](s, "k4")
			return err
		}},
		{"write-1", false, func(s *session.Session) error {
			n, err := session.Get[int](s, "k1")
			if err == nil {
				err = s.Put("k1", n+1)
			}
			return err
		}},
		{"write-5", false, func(s *session.Session) error {
			for i, v := range []any{"bob", 7, false, []string{"fig"}, map[string]int{"theme": 3}} {
				if err := s.Put("k"+strconv.Itoa(i), v); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			m := benchManager(b, c.touch)
			r := benchSession(b, m)
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := c.handler(session.From(r)); err != nil {
					b.Fatal(err)
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkLoadCommitParallel runs write-1 on many sessions from all CPUs,
// for the store's lock contention.
func BenchmarkLoadCommitParallel(b *testing.B) {
	m := benchManager(b, false)
	const sessions = 64
	reqs := make([]*http.Request, sessions)
	for i := range reqs {
		reqs[i] = benchSession(b, m)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		n, _ := session.Get[int](s, "k1")
		if err := s.Put("k1", n+1); err != nil {
			b.Fatal(err)
		}
	}))
	var next atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, reqs[next.Add(1)%sessions])
		}
	})
}
