package sessiontest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
)

// mapStore is a minimal correct store, and lossy one that says it saved
// what it dropped: the check must pass the first and catch the second.
type mapStore struct {
	session.Store // nil: only what the check uses is implemented
	mu            chan struct{}
	recs          map[string]session.Record
	saves         atomic.Int64
	dropEvery     int64 // 0: never
}

func newMapStore(dropEvery int64) *mapStore {
	s := &mapStore{mu: make(chan struct{}, 1), recs: map[string]session.Record{}, dropEvery: dropEvery}
	return s
}

func (s *mapStore) lock()   { s.mu <- struct{}{} }
func (s *mapStore) unlock() { <-s.mu }

func (s *mapStore) Load(_ context.Context, id string) (session.Record, error) {
	s.lock()
	defer s.unlock()
	r, ok := s.recs[id]
	if !ok {
		return r, session.ErrNotFound
	}
	return r, nil
}

func (s *mapStore) Save(_ context.Context, d session.Delta) (session.SaveResult, error) {
	s.lock()
	defer s.unlock()
	if n := s.saves.Add(1); s.dropEvery > 0 && n%s.dropEvery == 0 {
		return session.SaveResult{Version: 1}, nil // the lie
	}
	r, ok := s.recs[d.ID]
	if d.BaseVersion == 0 {
		if ok {
			return session.SaveResult{}, session.ErrExists
		}
		r = session.Record{ID: d.ID, Route: d.Route, Values: map[string][]byte{}}
	} else if !ok {
		return session.SaveResult{}, session.ErrNotFound
	}
	if err := session.CheckReads(d, r); err != nil {
		return session.SaveResult{}, err
	}
	vals := map[string][]byte{}
	for k, v := range r.Values {
		vals[k] = v
	}
	for k, v := range d.Set {
		vals[k] = v
	}
	for _, k := range d.Removed {
		delete(vals, k)
	}
	r.Values, r.Version = vals, r.Version+1
	s.recs[d.ID] = r
	return session.SaveResult{Version: r.Version}, nil
}

func (s *mapStore) Delete(_ context.Context, id string) error {
	s.lock()
	defer s.unlock()
	if _, ok := s.recs[id]; !ok {
		return session.ErrNotFound
	}
	delete(s.recs, id)
	return nil
}

func (s *mapStore) Touch(context.Context, string, time.Time) error { return nil }

// TestCheckLinearizableCatchesLostWrites: the check passes a correct store
// and fails one that drops a write it acknowledged, so it is not vacuous.
func TestCheckLinearizableCatchesLostWrites(t *testing.T) {
	for _, tt := range []struct {
		name      string
		dropEvery int64
		want      bool
	}{{"correct", 0, true}, {"drops every 7th save", 7, false}} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := session.New(session.Options{Store: newMapStore(tt.dropEvery), Route: "n1", IdleTimeout: -1, MaxLifetime: -1})
			if err != nil {
				t.Fatal(err)
			}
			if ok, report := checkLinearizable(t, LinearOptions{Managers: []*session.Manager{m}}); ok != tt.want {
				t.Fatalf("linearizable = %v, want %v\n%s", ok, tt.want, report)
			}
		})
	}
}
