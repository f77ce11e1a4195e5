package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
)

func TestSendsDistinctSessions(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("JSESSIONID")
		if err != nil {
			http.Error(w, "no session", http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[c.Value]++
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	o := options{addr: strings.TrimPrefix(srv.URL, "http://"), sessions: 1000, conns: 4, batch: 7, routes: []string{"n1", "n2"}}
	if err := send(o); err != nil {
		t.Fatal(err)
	}
	if len(seen) != o.sessions {
		t.Fatalf("%d distinct sessions reached the server, want %d", len(seen), o.sessions)
	}
	routes := map[string]int{}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("session %s sent %d times", id, n)
		}
		hexPart, rt, _ := strings.Cut(id, ".")
		if len(hexPart) != 32 {
			t.Errorf("session id %q: want 32 hex digits before the route", id)
		}
		routes[rt]++
	}
	if routes["n1"] != 500 || routes["n2"] != 500 {
		t.Errorf("routes %v, want 500 each of n1 and n2", routes)
	}
}

func TestSendFailsOnErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	o := options{addr: strings.TrimPrefix(srv.URL, "http://"), sessions: 10, conns: 1, batch: 4, routes: []string{"n1"}}
	if err := send(o); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("send: %v, want an error naming status 503", err)
	}
}

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		name, token, body string
		status            int
		want              int64
		wantErr           bool
	}{
		{name: "two balancers", token: "t", status: 200, want: 7,
			body: `{"balancers":[{"tracked_sessions":3,"untracked_sessions":1},{"tracked_sessions":4}]}`},
		{name: "refused", token: "wrong", status: 401, wantErr: true},
		{name: "not json", token: "t", status: 200, body: "<html>", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v1/balancers" || r.Header.Get("Authorization") != "Bearer "+tc.token {
					t.Errorf("request %s with %q", r.URL.Path, r.Header.Get("Authorization"))
				}
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			got, untracked, err := count(srv.URL, tc.token)
			if (err != nil) != tc.wantErr {
				t.Fatalf("count: %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && (got != tc.want || untracked != 1) {
				t.Errorf("count = %d, %d; want %d, 1", got, untracked, tc.want)
			}
		})
	}
}

func TestRunReportsMemory(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	o := options{addr: strings.TrimPrefix(srv.URL, "http://"), pid: os.Getpid(), sessions: 50, conns: 2, batch: 5, routes: []string{"n1"}}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
}
