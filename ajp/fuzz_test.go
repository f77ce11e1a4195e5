package ajp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeForwardRequest decodes arbitrary payloads. Whatever it
// accepts must hold only what HTTP allows, build a request without error
// or with ErrBadPacket, and decode the same after being encoded again.
func FuzzDecodeForwardRequest(f *testing.F) {
	f.Add(minimalGET)
	f.Add(fwd{method: 0xFF, attrs: []attr{strAttr(0x0D, "PATCH")}}.payload())
	f.Add(fwd{ssl: true, headers: [][2]string{{"Content-Length", "5"}, {"Cookie", "JSESSIONID=a.n1"}},
		attrs: []attr{strAttr(0x07, "-----BEGIN CERTIFICATE-----"), reqAttr("a", "b"), {0x0B, []byte{0, 128}}}}.payload())
	f.Fuzz(func(t *testing.T, p []byte) {
		fr, err := decodeForwardRequest(p, 100)
		if err != nil {
			return
		}
		if !validToken(fr.method) {
			t.Fatalf("method %q accepted", fr.method)
		}
		for k, vs := range fr.header {
			if !validToken(k) || k != http.CanonicalHeaderKey(k) {
				t.Fatalf("header name %q accepted", k)
			}
			for _, v := range vs {
				if !validHeaderValue(v) {
					t.Fatalf("header value %q accepted", v)
				}
			}
		}
		if r, err := newRequest(t.Context(), fr); err == nil {
			if r.URL == nil || r.Header.Get("Host") != "" || (r.TLS != nil) != fr.isSSL {
				t.Fatalf("request %+v from %+v", r, fr)
			}
		}
		again, err := decodeForwardRequest(reencode(fr), 100)
		if err != nil {
			t.Fatalf("re-encoded request refused: %v", err)
		}
		if !reflect.DeepEqual(again, fr) {
			t.Fatalf("re-decoded\n %+v\nfrom\n %+v", again, fr)
		}
	})
}

// reencode writes fr back in the wire format, with named headers and the
// method stored by name.
func reencode(fr *forwardRequest) []byte {
	w := new(wire)
	w.byte(2).byte(0xFF).str(fr.protocol).str(fr.uri).str(fr.remoteAddr).str(fr.remoteHost).str(fr.serverName)
	w.int(fr.serverPort)
	if fr.isSSL {
		w.byte(1)
	} else {
		w.byte(0)
	}
	n := 0
	for _, vs := range fr.header {
		n += len(vs)
	}
	w.int(n)
	for k, vs := range fr.header {
		for _, v := range vs {
			w.str(k).str(v)
		}
	}
	w.byte(0x0D).str(fr.method)
	if fr.hasQuery {
		w.byte(0x05).str(fr.query)
	}
	if fr.hasSecret {
		w.byte(0x0C).str(fr.secret)
	}
	for code, s := range map[byte]string{0x03: fr.remoteUser, 0x04: fr.authType, 0x06: fr.route, 0x07: fr.sslCert, 0x08: fr.sslCipher, 0x09: fr.sslSession} {
		if s != "" {
			w.byte(code).str(s)
		}
	}
	if fr.sslKeySize != 0 {
		w.byte(0x0B).int(fr.sslKeySize)
	}
	for k, v := range fr.attrs {
		w.byte(0x0A).str(k).str(v)
	}
	return w.byte(0xFF).Bytes()
}

// FuzzConn feeds arbitrary bytes to a connection, as a web server (or an
// attacker) could. Whatever comes, the connection must end once the input
// ends, without a panic, and anything sent back must be well-framed.
func FuzzConn(f *testing.F) {
	post := fwd{secret: testSecret, method: 4, headers: [][2]string{{"Content-Length", "5"}}}.packet()
	chunked := fwd{secret: testSecret, method: 4, headers: [][2]string{{"Transfer-Encoding", "chunked"}}}.packet()
	f.Add(fwd{secret: testSecret}.packet())
	f.Add(bytes.Join([][]byte{packet([]byte{typeCPing}), fwd{secret: testSecret}.packet(), packet([]byte{typeShutdown})}, nil))
	f.Add(append(post, bodyPacket([]byte("hello"))...))
	f.Add(bytes.Join([][]byte{chunked, bodyPacket([]byte("ab")), bodyPacket([]byte("cd")), bodyPacket(nil)}, nil))
	f.Add(fwd{secret: "wrong"}.packet())
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	s, err := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}), Options{Secret: testSecret, ReadTimeout: time.Second, IdleTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		server, client := net.Pipe()
		c := newConn(s, server)
		s.trackConn(c, true)
		served := make(chan struct{})
		go func() { defer close(served); c.serve() }()
		out := make(chan []byte, 1)
		go func() { b, _ := io.ReadAll(client); out <- b }()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(in) // fails early if the server closes first
		client.Close()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatal("connection still served after its input ended")
		}
		// Every packet starts with "AB"; the last may be cut short by the
		// close.
		b := <-out
		for len(b) >= 4 {
			if b[0] != 'A' || b[1] != 'B' {
				t.Fatalf("malformed output %x", b)
			}
			b = b[min(len(b), 4+(int(b[2])<<8|int(b[3]))):]
		}
	})
}

// FuzzClient: whatever a container answers, the Client returns an error
// or a response whose body ends (with an error or io.EOF), never panics
// or hangs, and keeps no connection that saw bad input.
func FuzzClient(f *testing.F) {
	f.Add(toServer(okHeaders, []byte{3, 0, 2, 'h', 'i', 0}, []byte{5, 1}))
	f.Add(toServer([]byte{6, 0x1F, 0xFA}, okHeaders, []byte{5, 1}))
	f.Add(toServer([]byte{4, 0, 200, 0, 0, 0, 2, 0xA0, 0x01, 0, 4, 't', 'e', 'x', 't', 0, 0, 1, 'X', 0, 0, 1, 'y', 0}, []byte{5, 0}))
	f.Add(toServer(okHeaders, []byte{3, 0, 0, 0}, []byte{5, 1}))
	f.Add([]byte{'A', 'B', 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, reply []byte) {
		c, err := NewClient(ClientOptions{Addr: "container", ResponseTimeout: time.Second, Dial: func(context.Context, string, string) (net.Conn, error) {
			a, b := net.Pipe()
			go func() {
				defer b.Close()
				b.SetDeadline(time.Now().Add(2 * time.Second))
				go io.Copy(io.Discard, b)
				b.Write(reply)
			}()
			return a, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseIdleConnections(true)
		r, _ := http.NewRequest("POST", "http://x/", strings.NewReader("body"))
		resp, err := c.Do(r, &Forward{})
		if err != nil {
			return
		}
		_, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil && len(c.idle) != 0 {
			t.Error("a connection that failed was kept")
		}
	})
}
