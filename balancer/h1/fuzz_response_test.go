package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// stricterResponse returns why h1 may refuse a response head that
// net/http's client accepts, or "".
func stricterResponse(head string, h1err error) string {
	lines := strings.Split(strings.ReplaceAll(head, "\r\n", "\n"), "\n")
	fields := map[string]int{}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
			return "obsolete line folding"
		}
		name, _, _ := strings.Cut(l, ":")
		fields[http.CanonicalHeaderKey(name)]++
	}
	switch {
	case statusOf(h1err) == http.StatusRequestHeaderFieldsTooLarge:
		return "head limits"
	case errors.Is(h1err, ErrSpaceColon), errors.Is(h1err, ErrFieldName):
		return "field names must be tokens (net/http's client keeps \"X \")"
	case fields["Content-Length"] > 1:
		return "more than one Content-Length"
	case fields["Content-Length"] > 0 && fields["Transfer-Encoding"] > 0:
		return "Content-Length with Transfer-Encoding"
	case strings.HasPrefix(head, "HTTP/1.0") && fields["Transfer-Encoding"] > 0:
		return "Transfer-Encoding in HTTP/1.0"
	case errors.Is(h1err, ErrBareCR):
		return "bare CR anywhere in the head"
	case errors.Is(h1err, ErrStatusLine), errors.Is(h1err, ErrVersion):
		return "status line: HTTP/1.0 or 1.1, status 100 to 999, reason of field-value bytes"
	}
	return ""
}

func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: JSESSIONID=a.n1; Path=/\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
		"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200\nX: a\n b\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		src := &countReader{r: bytes.NewReader(in)}
		ours := bufio.NewReaderSize(src, 16<<10)
		theirs := bufio.NewReaderSize(bytes.NewReader(in), 1<<20)
		var r Response
		var b Body
		for i := 0; i < 3; i++ {
			start := src.n - ours.Buffered()
			headErr := r.Read(ours, Limits{})
			var body string
			var bodyErr error
			if headErr == nil {
				b.Reset(ours, r.BodyFraming(false), r.ContentLength, Limits{})
				body, bodyErr = readBody(&b)
			}
			resp, nerr := http.ReadResponse(theirs, &http.Request{Method: "GET"})
			var nbody []byte
			if nerr == nil {
				nbody, nerr = io.ReadAll(resp.Body)
			}
			if headErr == io.EOF {
				return
			}
			if !agree(t, fmt.Sprint("response ", i), in[start:], headErr, bodyErr, nerr, stricterResponse) {
				return
			}
			if resp.StatusCode != r.Status || string(nbody) != body {
				t.Fatalf("response %d differs: h1 %d %q, net/http %d %q", i, r.Status, body, resp.StatusCode, nbody)
			}
			if r.BodyFraming(false) == UntilClose {
				return
			}
		}
	})
}

func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n",
		"5 \r\nhello\r\n0\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"ffffffffffffffff\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var b Body
		b.Reset(bufio.NewReader(bytes.NewReader(in)), Chunked, 0, Limits{})
		ours, err := readBody(&b)
		theirs, nerr := io.ReadAll(httputil.NewChunkedReader(bufio.NewReader(bytes.NewReader(in))))
		switch {
		case err == nil && nerr != nil:
			t.Fatalf("h1 accepts what net/http refuses (%v): %q", nerr, in)
		case err == nil && ours != string(theirs):
			t.Fatalf("h1 read %q, net/http %q from %q", ours, theirs, in)
		case err != nil && nerr == nil && stricterBody(err) == "" && b.state != chunkTrailer:
			// net/http's chunked reader leaves the trailer to its caller.
			t.Fatalf("h1 refuses (%v) what net/http accepts: %q", err, in)
		}
	})
}
