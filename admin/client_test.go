package admin

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/balancer"
)

func newClient(t *testing.T, e *env, token string) *Client {
	t.Helper()
	c, err := NewClient(e.srv.URL+"/", token, ClientOptions{Operator: "bob@ops"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientErrors(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8081", "ftp://h", "http://", "http://u:p@h", "http://h/?q=1"} {
		if _, err := NewClient(u, "t", ClientOptions{}); err == nil {
			t.Errorf("NewClient(%q) accepted", u)
		}
	}
	if _, err := NewClient("http://127.0.0.1:1", "", ClientOptions{}); err == nil {
		t.Error("NewClient without a token accepted")
	}
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	_, err := newClient(t, e, "wrong").Balancers(ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Message == "" {
		t.Errorf("wrong token: %v", err)
	}
	_, err = newClient(t, e, rwToken).Change(ctx, "web", "n1", MemberChange{Weight: num(0)})
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Field != "weight" {
		t.Errorf("bad weight: %#v", err)
	}
}

func TestClientLocate(t *testing.T) {
	e := newEnv(t, envConfig{balancers: map[string][]string{"a": {"n1", "n2"}, "b": {"n1", "n3"}}})
	c, ctx := newClient(t, e, roToken), context.Background()
	tests := []struct {
		route, bal, want string
		err              error
		status           int
	}{
		{"n2", "", "a", nil, 0},
		{"n3", "", "b", nil, 0},
		{"n1", "", "", ErrAmbiguous, 0},
		{"n1", "b", "b", nil, 0},
		{"n9", "", "", nil, 404},
		{"n2", "b", "", nil, 404},
	}
	for _, tt := range tests {
		got, err := c.Locate(ctx, tt.route, tt.bal)
		var ae *APIError
		switch {
		case tt.err != nil && !errors.Is(err, tt.err):
			t.Errorf("Locate(%s, %q): %v, want %v", tt.route, tt.bal, err, tt.err)
		case tt.status != 0 && (!errors.As(err, &ae) || ae.Status != tt.status):
			t.Errorf("Locate(%s, %q): %v, want status %d", tt.route, tt.bal, err, tt.status)
		case tt.err == nil && tt.status == 0 && (err != nil || got != tt.want):
			t.Errorf("Locate(%s, %q) = %q, %v; want %q", tt.route, tt.bal, got, err, tt.want)
		}
	}
}

// TestWaitDrained covers the ways a drain ends: drained, cancelled by
// someone enabling the member, cut short by a stop with sessions left,
// and the caller's deadline.
func TestWaitDrained(t *testing.T) {
	e := newEnv(t, envConfig{})
	c, ctx := newClient(t, e, rwToken), context.Background()
	var cookies []string
	for len(cookies) < 2 {
		if m, ck := e.browse("web", "/login", ""); m == "n1" {
			cookies = append(cookies, ck)
		}
	}
	_, err := c.Change(ctx, "web", "n1", MemberChange{State: str("draining")})
	must(t, err)

	// Deadline first: two sessions stay.
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	v, err := c.WaitDrained(dctx, "web", "n1", 20*time.Millisecond, nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || v.Drain == nil || v.Drain.Remaining != 2 {
		t.Errorf("deadline: %v, %+v", err, v.Drain)
	}

	// Drained: the users log out while we wait.
	var mu sync.Mutex
	var seen []int64
	done := make(chan error, 1)
	go func() {
		_, err := c.WaitDrained(ctx, "web", "n1", 10*time.Millisecond, func(v MemberView) {
			mu.Lock()
			seen = append(seen, v.Drain.Remaining)
			mu.Unlock()
		})
		done <- err
	}()
	for _, ck := range cookies {
		e.browse("web", "/logout", ck)
	}
	if err := <-done; err != nil {
		t.Errorf("drained: %v", err)
	}
	mu.Lock()
	if len(seen) == 0 || seen[len(seen)-1] != 0 {
		t.Errorf("progress readings %v", seen)
	}
	mu.Unlock()

	// Cancelled: someone enables the member.
	e.bal("web").Pool().SetState("n1", balancer.Active, "test")
	if _, err := c.WaitDrained(ctx, "web", "n1", 10*time.Millisecond, nil); !errors.Is(err, ErrDrainCancelled) {
		t.Errorf("cancelled: %v", err)
	}

	// Cut short: stopped with a session left.
	for {
		if m, _ := e.browse("web", "/login", ""); m == "n2" {
			break
		}
	}
	_, err = c.Change(ctx, "web", "n2", MemberChange{State: str("stopped")})
	must(t, err)
	if _, err := c.WaitDrained(ctx, "web", "n2", 10*time.Millisecond, nil); !errors.Is(err, ErrDrainCutShort) {
		t.Errorf("cut short: %v", err)
	}
}
