package interop

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/ajp"
)

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// protoReport is what the protocol handler saw of a request.
type protoReport struct {
	Method, RawQuery, RemoteAddr, Host string
	ContentLength                      int64
	TransferEncoding                   []string
	BodyLen                            int
	BodySHA                            string
	Attributes                         map[string]string
}

// protoHandler answers /echo with what it saw, /big?n=N with N bytes in
// small writes, and /flush with "part1", a flush, then "part2" once the
// test has seen part1.
func protoHandler(sawPart1 <-chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rep := protoReport{Method: r.Method, RawQuery: r.URL.RawQuery, RemoteAddr: r.RemoteAddr, Host: r.Host,
			ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
			BodyLen: len(b), BodySHA: fmt.Sprintf("%x", sha256.Sum256(b))}
		if i := ajp.RequestInfo(r); i != nil {
			rep.Attributes = i.Attributes
		}
		json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(bigBody(n))
	})
	mux.HandleFunc("/flush", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part1")
		w.(http.Flusher).Flush()
		select {
		case <-sawPart1:
			io.WriteString(w, "part2")
		case <-time.After(20 * time.Second):
			io.WriteString(w, "timeout: the flush did not reach the client")
		}
	})
	return mux
}

func bigBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251) + 1
	}
	return b
}

// TestAJPThroughHTTPD serves a Go handler with package ajp behind real
// mod_jk and mod_proxy_ajp: request bodies of many packets, with a length
// and chunked, large streamed responses, flushes, HEAD, query strings and
// the client's address, over connections the web server reuses.
func TestAJPThroughHTTPD(t *testing.T) {
	for _, tt := range []struct {
		name    string
		modules []string
		conf    func(t *testing.T, ajpAddr string) func(dir string) string
	}{
		{"mod_jk", []string{"jk"}, func(t *testing.T, ajpAddr string) func(string) string {
			host, port, _ := strings.Cut(ajpAddr, ":")
			workers := fmt.Sprintf("worker.list=go\nworker.go.type=ajp13\nworker.go.host=%s\nworker.go.port=%s\nworker.go.secret=%s\nworker.go.ping_mode=A\n",
				host, port, ajpSecret)
			return modJKConf(t, workers, "JkMount /* go\n")
		}},
		{"mod_proxy_ajp", []string{"proxy", "proxy_ajp"}, func(t *testing.T, ajpAddr string) func(string) string {
			return func(string) string {
				return fmt.Sprintf("ProxyPass \"/\" \"ajp://%s/\" secret=%s\n", ajpAddr, ajpSecret)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			needHTTPD(t, tt.modules...)
			sawPart1 := make(chan struct{})
			mux := protoHandler(sawPart1)
			mux.(*http.ServeMux).HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
			srv, err := ajp.NewServer(mux, ajp.Options{Secret: ajpSecret})
			if err != nil {
				t.Fatal(err)
			}
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := &countingListener{Listener: inner}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
			h := startHTTPD(t, tt.modules, tt.conf(t, ln.Addr().String()))
			checkProtocol(t, h.url, sawPart1)
			requests := int64(12)
			t.Logf("%d AJP connections accepted", ln.n.Load())
			if n := ln.n.Load(); n >= requests {
				t.Errorf("%d AJP connections for %d requests: the web server did not reuse them", n, requests)
			}
		})
	}
}

// checkProtocol sends the requests of TestAJPThroughHTTPD (12 of them, and
// the health checks before) through the web server at base.
func checkProtocol(t *testing.T, base string, sawPart1 chan<- struct{}) {
	c := &http.Client{Timeout: 30 * time.Second}
	upload := bigBody(100_000)
	echo := func(method, query string, body io.Reader, length int64) protoReport {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/echo?"+query, body)
		req.ContentLength = length
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep protoReport
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s /echo: %d, %v", method, resp.StatusCode, err)
		}
		return rep
	}
	want := fmt.Sprintf("%x", sha256.Sum256(upload))
	for i := 0; i < 3; i++ {
		// With a Content-Length: the first chunk comes unasked, then ~12 asked for.
		if rep := echo("POST", "a=1&b=%2F", bytes.NewReader(upload), int64(len(upload))); rep.BodySHA != want ||
			rep.ContentLength != int64(len(upload)) || rep.RawQuery != "a=1&b=%2F" {
			t.Fatalf("POST with Content-Length: %+v", rep)
		}
		// Chunked by the client: the web server passes it on, asked for chunk by chunk.
		rep := echo("PUT", "", io.MultiReader(bytes.NewReader(upload[:5000]), bytes.NewReader(upload[5000:])), -1)
		if rep.BodySHA != want || rep.ContentLength != -1 || len(rep.TransferEncoding) != 1 {
			t.Fatalf("chunked PUT: %+v", rep)
		}
		host, port, err := net.SplitHostPort(rep.RemoteAddr)
		if err != nil || host != "127.0.0.1" || port == "0" || rep.Attributes["AJP_REMOTE_PORT"] != port {
			t.Errorf("RemoteAddr %q, attributes %v: want 127.0.0.1 and the client's port", rep.RemoteAddr, rep.Attributes)
		}
		// A large response, streamed in packets.
		resp, err := c.Get(base + "/big?n=300000")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(b, bigBody(300_000)) {
			t.Fatalf("GET /big: %d bytes, %v", len(b), err)
		}
		// HEAD: headers only.
		resp, err = c.Head(base + "/big?n=10")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("HEAD: %d %v", resp.StatusCode, resp.Header)
		}
	}
	// A flush reaches the client while the handler still runs.
	resp, err := c.Get(base + "/flush")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	part1 := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, part1); err != nil || string(part1) != "part1" {
		t.Fatalf("before the handler ended: %q, %v", part1, err)
	}
	close(sawPart1)
	if rest, err := io.ReadAll(resp.Body); err != nil || string(rest) != "part2" {
		t.Fatalf("after part1: %q, %v", rest, err)
	}
}
