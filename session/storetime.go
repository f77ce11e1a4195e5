package session

import (
	"context"
	"time"
)

// StoreObserver is implemented by Observers that also want the duration of
// every store call the Manager makes (Load, Save, Delete, Touch, Claim, and
// a Locker's Lock), with its outcome: err is nil, or the store's error
// (including expected ones such as ErrNotFound and ErrConflict). The
// Manager finds it by type assertion on Options.Observer; it is called on
// the request's goroutine, so it must be fast.
type StoreObserver interface {
	StoreCalled(op Op, took time.Duration, err error)
}

// timedStore times the calls to a Store for a StoreObserver. The Manager
// looks for the store's optional capabilities on the store itself, not on
// this wrapper, and times Claim and Lock through it.
type timedStore struct {
	st  Store
	obs StoreObserver
}

func (t timedStore) Load(ctx context.Context, id string) (Record, error) {
	start := time.Now()
	r, err := t.st.Load(ctx, id)
	t.obs.StoreCalled(OpLoad, time.Since(start), err)
	return r, err
}

func (t timedStore) Save(ctx context.Context, d Delta) (SaveResult, error) {
	start := time.Now()
	r, err := t.st.Save(ctx, d)
	t.obs.StoreCalled(OpSave, time.Since(start), err)
	return r, err
}

func (t timedStore) Delete(ctx context.Context, id string) error {
	start := time.Now()
	err := t.st.Delete(ctx, id)
	t.obs.StoreCalled(OpDelete, time.Since(start), err)
	return err
}

func (t timedStore) Touch(ctx context.Context, id string, at time.Time) error {
	start := time.Now()
	err := t.st.Touch(ctx, id, at)
	t.obs.StoreCalled(OpTouch, time.Since(start), err)
	return err
}

// timedClaimer times a Claimer.
type timedClaimer struct {
	c   Claimer
	obs StoreObserver
}

func (t timedClaimer) Claim(ctx context.Context, id, route string) (Record, error) {
	start := time.Now()
	r, err := t.c.Claim(ctx, id, route)
	t.obs.StoreCalled(OpClaim, time.Since(start), err)
	return r, err
}

// timedLocker times a Locker's Lock (the wait included).
type timedLocker struct {
	l   Locker
	obs StoreObserver
}

func (t timedLocker) Lock(ctx context.Context, id string, wait, hold time.Duration) (StoreLock, error) {
	start := time.Now()
	sl, err := t.l.Lock(ctx, id, wait, hold)
	t.obs.StoreCalled(OpLock, time.Since(start), err)
	return sl, err
}

// timeStore makes m time its store calls when its Observer is a
// StoreObserver. Call it once the store's capabilities are found.
func (m *Manager) timeStore() {
	so, ok := m.obs.(StoreObserver)
	if !ok {
		return
	}
	m.o.Store = timedStore{m.store, so}
	if m.claimer != nil {
		m.claimer = timedClaimer{m.claimer, so}
	}
	if m.locker != nil {
		m.locker = timedLocker{m.locker, so}
	}
}
