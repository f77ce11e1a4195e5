package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tetherlb/tether/session"
)

func TestSessionCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := NewSessionCollector(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSessionCollector(reg); err == nil {
		t.Fatal("registering twice on one registry succeeded")
	}
	c.SessionCreated()
	c.SessionDestroyed(session.ReasonIdleTimeout)
	c.LockWaited(time.Millisecond, nil)
	c.LockWaited(time.Second, fmt.Errorf("gave up: %w", session.ErrBusy))
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{fmt.Errorf("x: %w", session.ErrNotFound), "not_found"},
		{fmt.Errorf("x: %w", session.ErrConflict), "conflict"},
		{session.ErrBusy, "busy"},
		{context.DeadlineExceeded, "timeout"},
		{errors.New("connection refused"), "error"},
	} {
		c.StoreCalled(session.OpSave, time.Millisecond, tc.err)
		if n := testutil.CollectAndCount(c.store, "tether_session_store_seconds"); n == 0 {
			t.Fatal("no store series")
		}
		if got := outcome(tc.err); got != tc.want {
			t.Errorf("outcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	want := `
# HELP tether_session_lock_busy_total Requests that gave up waiting for their session's lock.
# TYPE tether_session_lock_busy_total counter
tether_session_lock_busy_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tether_session_lock_busy_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c.store); n != 6 {
		t.Fatalf("%d store series, want one per outcome (6)", n)
	}
}
