package clusterstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/clusterstore"
	"github.com/tetherlb/tether/session/sessiontest"
)

// TestConformance runs the session.Store suite on one node, as the suite
// asks of a replicated store: read-your-writes through one Store value.
// The node's clock is the suite's, and its expiry sweep runs when the suite
// says so.
func TestConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T, cfg sessiontest.Config) sessiontest.Instance {
		net := clustertest.NewNetwork(1)
		ep, err := net.Listen(net.NewAddr())
		if err != nil {
			t.Fatal(err)
		}
		clock := &suiteClock{now: cfg.Now, tick: make(chan time.Time)}
		st, err := clusterstore.New(clusterstore.Options{Cluster: cluster.Options{
			Name: "n1", Transport: ep, Clock: clock, Logger: testLogger(t),
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return sessiontest.Instance{Store: st, Sweep: clock.sweep}
	})
}

// suiteClock is a cluster.Clock reading the suite's clock, whose ticker
// (the node's expiry sweep) fires only when sweep is called.
type suiteClock struct {
	now  func() time.Time
	tick chan time.Time
}

func (c *suiteClock) Now() time.Time                         { return c.now() }
func (c *suiteClock) NewTicker(time.Duration) cluster.Ticker { return manualTicker{c.tick} }

// sweep runs the node's sweep once and returns when it is over: the
// second tick is taken only once the sweep loop is back from the first.
func (c *suiteClock) sweep() {
	c.tick <- c.now()
	c.tick <- c.now()
}

type manualTicker struct{ c chan time.Time }

func (t manualTicker) C() <-chan time.Time { return t.c }
func (manualTicker) Stop()                 {}

// TestErrorMapping: each cluster outcome maps onto the session contract,
// keeps the cluster's error in the chain, and ends as the HTTP status the
// Manager answers with (through session.StatusCode, after the Manager
// wraps store failures in session.ErrStore).
func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		want    error // session sentinel, nil: a store failure
		status  int
		message string
	}{
		{"not found", cluster.ErrNotFound, session.ErrNotFound, 0, ""},
		{"exists", cluster.ErrExists, session.ErrExists, 0, ""},
		{"bad base", fmt.Errorf("%w: base 3, session at 2", cluster.ErrBadBase), session.ErrBadDelta, 0, ""},
		{"too large", fmt.Errorf("%w: 5000000 bytes", cluster.ErrTooLarge), session.ErrStoreFull, http.StatusServiceUnavailable, ""},
		{"fenced", fmt.Errorf("%w: n2 is taking session s over", cluster.ErrFenced), nil, http.StatusServiceUnavailable, "taken the session over"},
		{"not owner", &cluster.NotOwnerError{ID: "s", Owner: "n2", Epoch: 3}, nil, http.StatusServiceUnavailable, "taken the session over"},
		{"not acknowledged", cluster.ErrNotAcknowledged, nil, http.StatusServiceUnavailable, "may not survive"},
		{"claim timeout", cluster.ErrClaimTimeout, nil, http.StatusServiceUnavailable, ""},
		{"closed", cluster.ErrClosed, nil, http.StatusServiceUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clusterstore.MapError("save", "0123456789abcdef", tt.err)
			if !errors.Is(got, tt.err) {
				t.Errorf("%v: the cluster's error is not in the chain", got)
			}
			if bytes.Contains([]byte(got.Error()), []byte("0123456789abcdef")) {
				t.Errorf("%v: the message holds the whole session id", got)
			}
			if !bytes.Contains([]byte(got.Error()), []byte(tt.message)) {
				t.Errorf("%v: want a message saying %q", got, tt.message)
			}
			if tt.want != nil && !errors.Is(got, tt.want) {
				t.Errorf("%v: want %v", got, tt.want)
			}
			if tt.status == 0 {
				return
			}
			// What the Manager does with a store error it does not expect.
			managed := got
			if !errors.Is(got, session.ErrStoreFull) {
				managed = fmt.Errorf("session: save: %w: %w", session.ErrStore, got)
			}
			if s := session.StatusCode(managed); s != tt.status {
				t.Errorf("%v: status %d, want %d", got, s, tt.status)
			}
		})
	}
	if clusterstore.MapError("save", "s", nil) != nil {
		t.Error("nil error mapped to non-nil")
	}
}

func TestDeriveKeys(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	psk, gossip, err := clusterstore.DeriveKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	psk2, gossip2, _ := clusterstore.DeriveKeys(secret)
	other, _, _ := clusterstore.DeriveKeys([]byte("0123456789abcdef0123456789abcdeX"))
	switch {
	case len(psk) != 32 || len(gossip) != 32:
		t.Fatalf("keys of %d and %d bytes, want 32", len(psk), len(gossip))
	case bytes.Equal(psk, gossip):
		t.Fatal("the replication and gossip keys are equal")
	case !bytes.Equal(psk, psk2) || !bytes.Equal(gossip, gossip2):
		t.Fatal("keys differ for the same secret: nodes could not agree")
	case bytes.Equal(psk, other):
		t.Fatal("another secret gives the same key")
	case bytes.Contains(psk, secret[:8]) || bytes.Contains(gossip, secret[:8]):
		t.Fatal("a key contains the secret")
	}
	if err := (cluster.Options{Name: "n1", Addr: "127.0.0.1:7001", PSK: psk, GossipKey: gossip}).Validate(); err != nil {
		t.Fatalf("derived keys refused by the cluster: %v", err)
	}
	if _, _, err := clusterstore.DeriveKeys(secret[:clusterstore.MinSecret-1]); err == nil {
		t.Fatal("a secret shorter than MinSecret was accepted")
	}
}

// testLogger logs to a buffer printed if the test fails.
func testLogger(t *testing.T) *slog.Logger {
	lb := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 4<<20 {
		l.b.Reset()
	}
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
