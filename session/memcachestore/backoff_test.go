package memcachestore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/tetherlb/tether/session"
)

// backoffStore is a Store whose retry pauses are recorded, not slept: each
// pause is the largest its window allows (randN returns n-1), and randN
// records the window it was asked for.
type backoffStore struct {
	*Store
	windows []time.Duration // randN's arguments, in order
	pauses  []time.Duration // sleep's arguments, in order
}

func newBackoffStore(t *testing.T, o Options) *backoffStore {
	t.Helper()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	b := &backoffStore{Store: &Store{o: o.withDefaults()}}
	b.randN = func(n int64) int64 {
		if n <= 0 {
			t.Fatalf("randN(%d): the window must be positive", n)
		}
		b.windows = append(b.windows, time.Duration(n))
		return n - 1
	}
	b.sleep = func(ctx context.Context, d time.Duration) error {
		b.pauses = append(b.pauses, d)
		return ctx.Err()
	}
	return b
}

// conflicting returns an attempt that fails with lost for its first k
// calls and then succeeds, and the count of calls.
func conflicting(k int, lost error) (func() error, *int) {
	calls := new(int)
	return func() error {
		*calls++
		if *calls <= k {
			return fmt.Errorf("put: %w", lost)
		}
		return nil
	}, calls
}

// TestRetryBackoff: an attempt that loses k compare-and-swaps in a row is
// tried again after k pauses, pause i uniform in [0, min(max, base·2^i)),
// and one that loses more than Retries fails with session.ErrConflict
// after Retries pauses.
func TestRetryBackoff(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name      string
		o         Options
		conflicts int
		lost      error
		windows   []time.Duration // want; nil: none
		conflict  bool            // want session.ErrConflict
	}{
		{"no conflict", Options{}, 0, memcache.ErrCASConflict, nil, false},
		{"one CAS conflict", Options{}, 1, memcache.ErrCASConflict, []time.Duration{ms}, false},
		{"one add refused", Options{}, 1, memcache.ErrNotStored, []time.Duration{ms}, false},
		{"defaults, up to the cap", Options{}, 8, memcache.ErrCASConflict,
			[]time.Duration{ms, 2 * ms, 4 * ms, 8 * ms, 16 * ms, 32 * ms, 50 * ms, 50 * ms}, false},
		{"last retry wins", Options{Retries: 3, RetryBackoff: 10 * ms, RetryBackoffMax: 25 * ms}, 3, memcache.ErrCASConflict,
			[]time.Duration{10 * ms, 20 * ms, 25 * ms}, false},
		{"retries exhausted", Options{Retries: 3, RetryBackoff: 10 * ms, RetryBackoffMax: 25 * ms}, 4, memcache.ErrCASConflict,
			[]time.Duration{10 * ms, 20 * ms, 25 * ms}, true},
		{"base above the cap", Options{Retries: 2, RetryBackoff: time.Second, RetryBackoffMax: 5 * ms}, 2, memcache.ErrNotStored,
			[]time.Duration{5 * ms, 5 * ms}, false},
		{"a cap that doubling would overflow", Options{Retries: 3, RetryBackoff: 1 << 61, RetryBackoffMax: math.MaxInt64}, 3, memcache.ErrCASConflict,
			[]time.Duration{1 << 61, 1 << 62, math.MaxInt64}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackoffStore(t, tt.o)
			attempt, calls := conflicting(tt.conflicts, tt.lost)
			err := b.retry(context.Background(), attempt)
			if tt.conflict != errors.Is(err, session.ErrConflict) || !tt.conflict && err != nil {
				t.Fatalf("retry = %v, want ErrConflict: %v", err, tt.conflict)
			}
			if want := min(tt.conflicts, b.o.Retries) + 1; *calls != want {
				t.Errorf("%d attempts, want %d", *calls, want)
			}
			if fmt.Sprint(b.windows) != fmt.Sprint(tt.windows) {
				t.Errorf("pause windows %v, want %v", b.windows, tt.windows)
			}
			if len(b.pauses) != len(tt.windows) {
				t.Fatalf("%d pauses %v, want %d", len(b.pauses), b.pauses, len(tt.windows))
			}
			for i, d := range b.pauses {
				if d < 0 || d >= tt.windows[i] {
					t.Errorf("pause %d: %v, want in [0, %v)", i, d, tt.windows[i])
				}
			}
		})
	}
}

// TestRetryDefaultsSpan: with the default Options, the window grows to
// RetryBackoffMax and a write that loses every race pauses Retries times
// before its ErrConflict, 0.76 s at most in all.
func TestRetryDefaultsSpan(t *testing.T) {
	b := newBackoffStore(t, Options{})
	attempt, calls := conflicting(math.MaxInt, memcache.ErrCASConflict)
	if err := b.retry(context.Background(), attempt); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("retry = %v, want ErrConflict", err)
	}
	var sum time.Duration
	for _, w := range b.windows {
		sum += w
	}
	if *calls != 21 || len(b.pauses) != 20 || sum != 763*time.Millisecond {
		t.Errorf("%d attempts, %d pauses, windows %v adding to %v; want 21, 20, 763ms", *calls, len(b.pauses), b.windows, sum)
	}
}

// TestRetryStops: an error other than a lost compare-and-swap is returned
// at once without a pause, and a context that ends during a pause ends
// retry with its error, without another attempt.
func TestRetryStops(t *testing.T) {
	t.Run("other error", func(t *testing.T) {
		b := newBackoffStore(t, Options{})
		boom := errors.New("boom")
		calls := 0
		err := b.retry(context.Background(), func() error { calls++; return boom })
		if err != boom || calls != 1 || len(b.pauses) != 0 {
			t.Errorf("retry = %v after %d attempts and %d pauses, want boom after 1 and 0", err, calls, len(b.pauses))
		}
	})
	t.Run("context ends during a pause", func(t *testing.T) {
		b := newBackoffStore(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pauses := 0
		b.sleep = func(ctx context.Context, _ time.Duration) error {
			pauses++
			cancel() // the context ends while retry waits (TestSleepCtx: the real pause ends then)
			return ctx.Err()
		}
		attempt, calls := conflicting(math.MaxInt, memcache.ErrCASConflict)
		if err := b.retry(ctx, attempt); err != context.Canceled || *calls != 1 || pauses != 1 {
			t.Errorf("retry = %v after %d attempts and %d pauses, want context.Canceled after 1 and 1", err, *calls, pauses)
		}
	})
}

// TestSleepCtx: the real pause ends with the context's error as soon as
// the context ends, long before its duration.
func TestSleepCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sleepCtx(ctx, time.Hour) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("sleepCtx = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sleepCtx still waits 10s after its context ended")
	}
	if err := sleepCtx(context.Background(), 0); err != nil {
		t.Fatalf("sleepCtx(0) = %v", err)
	}
}

// TestRetryOptions: negative pauses are refused.
func TestRetryOptions(t *testing.T) {
	for _, o := range []Options{{RetryBackoff: -1}, {RetryBackoffMax: -time.Millisecond}} {
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "RetryBackoff") {
			t.Errorf("%+v: Validate = %v, want an error naming RetryBackoff", o, err)
		}
		if _, err := New([]string{"127.0.0.1:1"}, o); err == nil {
			t.Errorf("%+v: New succeeded", o)
		}
	}
}
