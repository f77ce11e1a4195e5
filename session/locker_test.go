package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/memstore"
)

// lockingStore is a memstore shared by two Managers, as two nodes share a
// Redis, with a Locker whose leases the test can take away.
type lockingStore struct {
	*memstore.Store
	mu     sync.Mutex
	held   map[string]*testLock
	locks  int
	busy   bool // Lock fails with ErrBusy
	broken bool // Lock fails with a store error
}

type testLock struct {
	s    *lockingStore
	id   string
	lost bool
}

func (s *lockingStore) Lock(ctx context.Context, id string, wait, _ time.Duration) (session.StoreLock, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.broken:
		return nil, errors.New("the store is down")
	case s.busy || s.held[id] != nil:
		return nil, session.ErrBusy
	}
	l := &testLock{s: s, id: id}
	s.held[id] = l
	s.locks++
	return l, nil
}

func (l *testLock) Held() bool {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return !l.lost
}

func (l *testLock) Unlock() {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.held[l.id] == l {
		delete(l.s.held, l.id)
	}
}

// loseAll takes every held lease away, as an expiry in the store would.
func (s *lockingStore) loseAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, l := range s.held {
		l.lost = true
		delete(s.held, id)
	}
}

// timings records StoreCalled.
type timings struct {
	session.NopObserver
	mu  sync.Mutex
	ops map[session.Op]int
}

func (t *timings) StoreCalled(op session.Op, took time.Duration, _ error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if took < 0 {
		panic("negative duration")
	}
	t.ops[op]++
}

// TestStoreLocker: with a store that is a session.Locker, an Exclusive
// request takes the store's lock too and releases it at its commit; a
// busy lock is a 503, a failing one a 503 counted as a store error; a
// lease lost during the request makes its commit fail (409) with nothing
// saved; and a StoreObserver sees every store call, the lock included.
func TestStoreLocker(t *testing.T) {
	mem, err := memstore.New(memstore.Options{JanitorInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	st := &lockingStore{Store: mem, held: map[string]*testLock{}}
	obs := &timings{ops: map[session.Op]int{}}
	m, err := session.New(session.Options{Store: st, Route: "n1", Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	var during func()
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		n, err := session.Get[int](s, "n")
		if err != nil {
			http.Error(w, err.Error(), session.StatusCode(err))
			return
		}
		if during != nil {
			during()
		}
		if err := s.Put("n", n+1); err != nil {
			http.Error(w, err.Error(), session.StatusCode(err))
		}
	}))
	send := func(cookie string) (int, string) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		for _, c := range w.Result().Cookies() {
			cookie = c.Name + "=" + c.Value
		}
		return w.Code, cookie
	}
	code, cookie := send("")
	if code != http.StatusOK || cookie == "" {
		t.Fatalf("first request: %d %q", code, cookie)
	}
	for _, tc := range []struct {
		name   string
		setup  func()
		during func()
		code   int
		saved  bool
	}{
		{"lock taken and released", nil, nil, http.StatusOK, true},
		{"busy elsewhere", func() { st.busy = true }, nil, http.StatusServiceUnavailable, false},
		{"store down", func() { st.broken = true }, nil, http.StatusServiceUnavailable, false},
		{"lease lost mid-request", nil, st.loseAll, http.StatusConflict, false},
		{"again after", nil, nil, http.StatusOK, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st.busy, st.broken, during = false, false, tc.during
			if tc.setup != nil {
				tc.setup()
			}
			locks := st.locks
			rec, _ := mem.Load(context.Background(), idPart(cookie))
			if code, _ := send(cookie); code != tc.code {
				t.Fatalf("status %d, want %d", code, tc.code)
			}
			after, _ := mem.Load(context.Background(), idPart(cookie))
			if saved := after.Version != rec.Version; saved != tc.saved {
				t.Fatalf("saved %v (version %d → %d), want %v", saved, rec.Version, after.Version, tc.saved)
			}
			if tc.code == http.StatusOK && st.locks != locks+1 {
				t.Fatalf("%d store locks taken, want 1", st.locks-locks)
			}
			if len(st.held) != 0 {
				t.Fatalf("store locks still held after the request: %v", st.held)
			}
		})
	}
	if obs.ops[session.OpLock] == 0 || obs.ops[session.OpSave] == 0 || obs.ops[session.OpLoad] == 0 {
		t.Fatalf("store calls observed: %v", obs.ops)
	}
}

func TestPollLock(t *testing.T) {
	boom := errors.New("boom")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		try  func(n int) (bool, error)
		want error
		min  int // tries at least
	}{
		{"free at once", context.Background(), func(int) (bool, error) { return true, nil }, nil, 1},
		{"free on the third try", context.Background(), func(n int) (bool, error) { return n == 3, nil }, nil, 3},
		{"never free", context.Background(), func(int) (bool, error) { return false, nil }, session.ErrBusy, 2},
		{"store error", context.Background(), func(int) (bool, error) { return false, boom }, boom, 1},
		{"client gone", cancelled, func(int) (bool, error) { return false, nil }, context.Canceled, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			err := session.PollLock(tc.ctx, 30*time.Millisecond, 5*time.Millisecond, func() (bool, error) { n++; return tc.try(n) })
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if n < tc.min {
				t.Fatalf("%d tries, want at least %d", n, tc.min)
			}
		})
	}
}
