package session_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/memstore"
	"github.com/tetherlb/tether/session/sessiontest"
)

// env is a Manager over a memstore, both on one manual clock.
type env struct {
	t     testing.TB
	m     *session.Manager
	store *memstore.Store
	clock *sessiontest.Clock
	obs   *countingObserver
	lis   *listeners
}

func newEnv(t testing.TB, o session.Options) *env {
	t.Helper()
	e := &env{t: t, clock: sessiontest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)),
		obs: &countingObserver{}, lis: &listeners{}}
	if o.Store == nil {
		st, err := memstore.New(memstore.Options{Now: e.clock.Now, JanitorInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		e.store, o.Store = st, st
	}
	if o.Route == "" {
		o.Route = "n1"
	}
	if o.Now == nil {
		o.Now = e.clock.Now
	}
	o.Observer, o.OnCreate, o.OnDestroy = e.obs, e.lis.onCreate, e.lis.onDestroy
	m, err := session.New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	return e
}

// do sends a request through the Manager's Handler around h.
func (e *env) do(h http.HandlerFunc, method, target string, cookies ...string) *http.Response {
	e.t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for _, c := range cookies {
		r.Header.Add("Cookie", c)
	}
	w := httptest.NewRecorder()
	e.m.Handler(h).ServeHTTP(w, r)
	return w.Result()
}

// sessions returns how many sessions the memstore holds.
func (e *env) sessions() int { return e.store.Stats().Sessions }

// setCookies returns the response's Set-Cookie headers.
func setCookies(resp *http.Response) []string { return resp.Header.Values("Set-Cookie") }

// sessionCookie returns "JSESSIONID=<value>" from the response's Set-Cookie,
// failing the test unless there is exactly one that sets a value.
func sessionCookie(t testing.TB, resp *http.Response) string {
	t.Helper()
	sc := setCookies(resp)
	if len(sc) != 1 {
		t.Fatalf("Set-Cookie %q, want one", sc)
	}
	c, err := http.ParseSetCookie(sc[0])
	if err != nil || c.Value == "" || c.MaxAge < 0 {
		t.Fatalf("Set-Cookie %q does not set a session (%v)", sc[0], err)
	}
	return c.Name + "=" + c.Value
}

// body reads the response body.
func body(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// put returns a handler storing key=value; its failure fails the test.
func put(t testing.TB, key string, value any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Put(key, value); err != nil {
			t.Errorf("Put(%q): %v", key, err)
		}
	}
}

// get returns a handler writing the string under key.
func get(t testing.TB, key string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := session.Get[string](session.From(r), key)
		if err != nil {
			t.Errorf("Get(%q): %v", key, err)
		}
		io.WriteString(w, v)
	}
}

// countingObserver counts the Manager's events.
type countingObserver struct {
	session.NopObserver
	mu        sync.Mutex
	created   int
	destroyed map[session.Reason]int
	claimed   int
	rejected  map[session.Rejection]int
	conflicts int
	errors    map[session.Op]int
}

func (o *countingObserver) SessionCreated() { o.mu.Lock(); o.created++; o.mu.Unlock() }
func (o *countingObserver) SessionClaimed() { o.mu.Lock(); o.claimed++; o.mu.Unlock() }
func (o *countingObserver) Conflict(n int)  { o.mu.Lock(); o.conflicts += n; o.mu.Unlock() }
func (o *countingObserver) SessionDestroyed(r session.Reason) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.destroyed == nil {
		o.destroyed = map[session.Reason]int{}
	}
	o.destroyed[r]++
}
func (o *countingObserver) IDRejected(r session.Rejection) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rejected == nil {
		o.rejected = map[session.Rejection]int{}
	}
	o.rejected[r]++
}
func (o *countingObserver) StoreError(op session.Op, _ error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.errors == nil {
		o.errors = map[session.Op]int{}
	}
	o.errors[op]++
}

// listeners records OnCreate and OnDestroy calls.
type listeners struct {
	mu        sync.Mutex
	created   []string
	destroyed []string // "<id> <reason>"
}

func (l *listeners) onCreate(rec session.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.created = append(l.created, rec.ID)
}

func (l *listeners) onDestroy(rec session.Record, why session.Reason) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.destroyed = append(l.destroyed, rec.ID+" "+why.String())
}

func (l *listeners) snapshot() (created, destroyed []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.created...), append([]string(nil), l.destroyed...)
}

// idPart returns the id part of "JSESSIONID=<id>.<route>".
func idPart(cookie string) string {
	v := cookie[strings.IndexByte(cookie, '=')+1:]
	return v[:strings.IndexByte(v, '.')]
}

// failingStore fails every call with err, for store-failure tests.
type failingStore struct {
	session.Store
	mu   sync.Mutex
	fail map[session.Op]error
}

func (f *failingStore) err(op session.Op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail[op]
}

func (f *failingStore) Load(ctx context.Context, id string) (session.Record, error) {
	if err := f.err(session.OpLoad); err != nil {
		return session.Record{}, err
	}
	return f.Store.Load(ctx, id)
}

func (f *failingStore) Save(ctx context.Context, d session.Delta) (session.SaveResult, error) {
	if err := f.err(session.OpSave); err != nil {
		return session.SaveResult{}, err
	}
	return f.Store.Save(ctx, d)
}

func (f *failingStore) Delete(ctx context.Context, id string) error {
	if err := f.err(session.OpDelete); err != nil {
		return err
	}
	return f.Store.Delete(ctx, id)
}

var errBroken = errors.New("disk on fire")
