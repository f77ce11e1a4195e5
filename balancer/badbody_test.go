package balancer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// badChunks are chunked bodies that start well and then break the
// framing: the member has the head and some data when the balancer finds
// out.
var badChunks = map[string]string{
	"size overflow":     "5\r\nhello\r\n10000000000000000\r\n",
	"0x prefix":         "5\r\nhello\r\n0x3\r\nabc\r\n0\r\n\r\n",
	"negative size":     "5\r\nhello\r\n-3\r\nabc\r\n0\r\n\r\n",
	"bare LF":           "5\r\nhello\r\n3\nabc\r\n0\r\n\r\n",
	"no size":           "5\r\nhello\r\n\r\nabc\r\n0\r\n\r\n",
	"data without CRLF": "5\r\nhelloXX0\r\n\r\n",
}

// TestBadChunkedBodyIs400: a request body with broken chunked framing is
// answered 400 with the client's connection closed, the member's request
// is cut off (its connection closed, never a complete body), and the
// observer counts it with ErrBadRequestBody; on both engines, to http://
// and ajp:// members.
func TestBadChunkedBodyIs400(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		for _, scheme := range []string{"http", "ajp"} {
			t.Run(scheme, func(t *testing.T) { testBadChunkedBodyIs400(t, e, scheme) })
		}
	})
}

func testBadChunkedBodyIs400(t *testing.T, e engine, scheme string) {
	var started, ended, complete atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		defer ended.Add(1)
		_, err := io.ReadAll(r.Body)
		if err == nil {
			complete.Add(1)
			io.WriteString(w, "complete body")
		}
	})
	var member MemberConfig
	if scheme == "ajp" {
		member, _ = serveAJP(t, h, "r")
	} else {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL)
		member = MemberConfig{URL: u, Route: "r"}
	}
	var obs observed
	opts := fastOptions()
	opts.Observer = &obs
	_, f := e.front(t, opts, member)
	for name, body := range badChunks {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !resp.Close {
				t.Errorf("got %d (close %v) %q, want 400 and Connection: close", resp.StatusCode, resp.Close, b)
			}
			if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
				t.Errorf("after the 400 the connection gave %d bytes, %v; want it closed", n, err)
			}
		})
	}
	// The member's handlers end once they see their connection closed.
	proctest.Eventually(t, 10*time.Second, func() error {
		if s, e := started.Load(), ended.Load(); s != e {
			return fmt.Errorf("%d of the member's %d requests still running", s-e, s)
		}
		return nil
	})
	if n := complete.Load(); n > 0 {
		t.Errorf("the member read %d complete bodies", n)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.infos) != len(badChunks) {
		t.Fatalf("observed %d requests, want %d", len(obs.infos), len(badChunks))
	}
	for _, i := range obs.infos {
		if i.Status != http.StatusBadRequest || !errors.Is(i.Err, ErrBadRequestBody) || !strings.Contains(i.Err.Error(), "chunk") {
			t.Errorf("observed %+v", i)
		}
	}
}
