package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestOpenAndRecheck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		handler   http.HandlerFunc
		wantErr   string // "" for success
		wantAlive int
	}{
		{name: "keep-alive", handler: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }, wantAlive: 40},
		{name: "server closes", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			w.Write([]byte("ok"))
		}, wantErr: "closed the connection"},
		{name: "server errors", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }, wantErr: "status 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			addr := strings.TrimPrefix(srv.URL, "http://")
			req := request(addr, "/", "JSESSIONID=a.n2")
			cs, err := open(addr, 40, 8, req, dialTCP)
			defer func() {
				for _, c := range cs {
					if c != nil {
						c.Close()
					}
				}
			}()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("open: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if alive := recheck(cs, 8, req); alive != tc.wantAlive {
				t.Errorf("%d connections alive, want %d", alive, tc.wantAlive)
			}
		})
	}
}

// TestOpenTLS: the same over TLS.
func TestOpenTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	req := request(addr, "/", "")
	cs, err := open(addr, 20, 4, req, dialTLS)
	defer func() {
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	if alive := recheck(cs, 4, req); alive != 20 {
		t.Errorf("%d connections alive, want 20", alive)
	}
}
