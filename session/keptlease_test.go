package session_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
)

// eventually polls cond until it holds, within 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval
	}
}

func TestKeptLease(t *testing.T) {
	const length = 30 * time.Millisecond
	t.Run("renewed while held, released once", func(t *testing.T) {
		var renewals, releases atomic.Int32
		k := session.KeepLease(time.Now(), 10*length, time.Hour, func(time.Duration) (bool, error) {
			renewals.Add(1)
			return true, nil
		}, func(time.Duration) { releases.Add(1) })
		eventually(t, "three renewals", func() bool { return renewals.Load() >= 3 })
		if !k.Held() {
			t.Fatal("a lease renewed three times, each well within its length, is not held")
		}
		k.Unlock()
		k.Unlock()
		if k.Held() || releases.Load() != 1 {
			t.Fatalf("after Unlock: held %v, released %d times", k.Held(), releases.Load())
		}
	})
	t.Run("taken by another", func(t *testing.T) {
		var releases atomic.Int32
		k := session.KeepLease(time.Now(), length, time.Hour, func(time.Duration) (bool, error) { return false, nil },
			func(time.Duration) { releases.Add(1) })
		eventually(t, "the loss found", func() bool { return !k.Held() })
		k.Unlock()
		if releases.Load() != 0 {
			t.Fatal("released a lock that is someone else's")
		}
	})
	t.Run("store not answering", func(t *testing.T) {
		var tries atomic.Int32
		k := session.KeepLease(time.Now(), length, time.Hour, func(time.Duration) (bool, error) {
			tries.Add(1)
			return false, errors.New("timeout")
		}, func(time.Duration) {})
		eventually(t, "the lease run out", func() bool { return !k.Held() })
		if tries.Load() < 2 {
			t.Fatalf("%d renewal tries: a renewal without an answer is tried again while the lease lasts", tries.Load())
		}
	})
	t.Run("no renewal past hold", func(t *testing.T) {
		var renewals atomic.Int32
		k := session.KeepLease(time.Now(), length, 2*length, func(l time.Duration) (bool, error) {
			renewals.Add(1)
			return true, nil
		}, func(time.Duration) {})
		eventually(t, "the hold over", func() bool { return !k.Held() })
		if n := renewals.Load(); n == 0 || n > 6 {
			t.Fatalf("%d renewals within a hold of two lease lengths", n)
		}
	})
}
