package main

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"
	"time"
)

// serveNetHTTP answers as serve does, but through net/http.Server: a
// measure of what the standard library's server costs per request (the
// "direct-nethttp" target of bench/compare).
func (s *server) serveNetHTTP(ln net.Listener) error {
	small, big := strconv.Itoa(len(s.small)), strconv.Itoa(len(s.big))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, n := s.small, small
		if r.URL.Path == "/big" {
			body, n = s.big, big
		}
		hd := w.Header()
		hd["Content-Type"] = []string{"text/plain"}
		hd["Content-Length"] = []string{n}
		hd["X-Node"] = []string{s.route}
		session := false
		for _, c := range r.Header["Cookie"] {
			session = session || hasCookie([]byte(c), "JSESSIONID")
		}
		if !session {
			var id [16]byte
			rand.Read(id[:])
			hd["Set-Cookie"] = []string{"JSESSIONID=" + hex.EncodeToString(id[:]) + "." + s.route + "; Path=/"}
		}
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	return srv.Serve(ln)
}
