package cart_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/session"
)

// TestDrainAnnouncedOnHealthz: after Drain, /healthz answers 503 with
// "Tether-State: draining" (the balancer's contract), while the node goes
// on serving carts.
func TestDrainAnnouncedOnHealthz(t *testing.T) {
	st := newNode(t, cart.Options{})
	app, err := cart.New(cart.Options{Route: "n1", Store: st.store})
	if err != nil {
		t.Fatal(err)
	}
	health := func() (int, string, string) {
		rec := recorder(app, "GET", "/healthz", "")
		return rec.Code, rec.Header().Get(cart.StateHeader), rec.Body.String()
	}
	if code, state, _ := health(); code != 200 || state != "" {
		t.Fatalf("before Drain: %d, %s %q", code, cart.StateHeader, state)
	}
	app.Drain()
	if code, state, body := health(); code != 503 || state != "draining" || !strings.Contains(body, `"status": "draining"`) {
		t.Fatalf("after Drain: %d, %s %q, %s", code, cart.StateHeader, state, body)
	}
	if !app.Draining() {
		t.Fatal("Draining() false after Drain")
	}
	if rec := recorder(app, "POST", "/api/cart/items", `{"item":"plum"}`); rec.Code != 200 {
		t.Fatalf("a draining node refused a request: %d %s", rec.Code, rec.Body)
	}
}

func TestDrainContext(t *testing.T) {
	t.Run("announces at once, ends after grace", func(t *testing.T) {
		ctx, stop := context.WithCancel(context.Background())
		announced := make(chan struct{})
		out, cancel := cart.DrainContext(ctx, func() { close(announced) }, time.Minute)
		defer cancel()
		stop()
		<-announced
		if out.Err() != nil {
			t.Fatal("the drain context ended as soon as the drain was announced, a minute early")
		}
		cancel() // what a shutdown cut short does
		<-out.Done()
	})
	t.Run("short grace", func(t *testing.T) {
		ctx, stop := context.WithCancel(context.Background())
		out, cancel := cart.DrainContext(ctx, func() {}, time.Millisecond)
		defer cancel()
		stop()
		select {
		case <-out.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the drain context outlived its grace by 10s")
		}
	})
	t.Run("released before the signal", func(t *testing.T) {
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		announced := make(chan struct{}, 1)
		out, cancel := cart.DrainContext(ctx, func() { announced <- struct{}{} }, time.Millisecond)
		cancel()
		<-out.Done()
		stop()
		select {
		case <-announced:
			t.Fatal("a released drain context announced a drain")
		default:
		}
	})
}

// TestClusterEndpoints: /cluster and /cluster/sessions/{id} show what the
// options return; without them there are no such endpoints.
func TestClusterEndpoints(t *testing.T) {
	var asked []string
	o := cart.Options{
		Cluster: func() any { return map[string]any{"node": "n1", "members": []string{"n1", "n2"}} },
		SessionCopy: func(id string) (any, error) {
			asked = append(asked, id)
			if id != "abc" {
				return nil, fmt.Errorf("copy %s: %w", id, session.ErrNotFound)
			}
			return map[string]any{"owner": "n2", "version": 3}, nil
		},
	}
	n := newNode(t, o)
	tests := []struct {
		path   string
		status int
		want   string
	}{
		{"/cluster", 200, `"members":["n1","n2"]`},
		{"/cluster/sessions/abc", 200, `"owner":"n2"`},
		{"/cluster/sessions/abc.n2", 200, `"version":3`},
		{"/cluster/sessions/nope.n1", 404, `no live copy`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, body := get(t, n.srv.URL+tt.path)
			if status != tt.status || !strings.Contains(compact(body), tt.want) {
				t.Fatalf("%d %s, want %d with %s", status, body, tt.status, tt.want)
			}
		})
	}
	if fmt.Sprint(asked) != "[abc abc nope]" {
		t.Fatalf("SessionCopy asked for %v, want the id parts [abc abc nope]", asked)
	}
	plain := newNode(t, cart.Options{})
	for _, p := range []string{"/cluster", "/cluster/sessions/abc"} {
		if status, _ := get(t, plain.srv.URL+p); status != 404 {
			t.Fatalf("GET %s without a cluster: %d, want 404", p, status)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func compact(s string) string {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// recorder serves one request to h in process; body, if any, is JSON.
func recorder(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
