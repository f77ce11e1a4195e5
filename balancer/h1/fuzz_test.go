package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The differential fuzz targets feed the same bytes to this package and to
// net/http and require agreement on what decides where messages begin and
// end: whenever h1 accepts a message, net/http accepts it too, with the
// same method, target, Host, persistence and body bytes, so that the next
// message starts at the same byte for both. Where h1 refuses what
// net/http accepts, the input must fall under one of the documented
// reasons h1 is stricter (stricterRequest and friends); anything else
// fails the target.

// netHTTPRequest is net/http's verdict on one request: http.ReadRequest,
// the checks net/http's server adds to it (version, Host, field names,
// Expect), and the body read to its end.
type netHTTPRequest struct {
	method, target, host string
	close                bool
	body                 []byte
}

func readNetHTTP(br *bufio.Reader) (*netHTTPRequest, error) {
	// RFC 9112 §2.2: a server should ignore empty lines before a request;
	// net/http's server does so only after a POST, h1 always.
	for {
		p, err := br.Peek(1)
		if err != nil || (p[0] != '\r' && p[0] != '\n') {
			break
		}
		if p, _ := br.Peek(2); p[0] == '\r' && (len(p) < 2 || p[1] != '\n') {
			break
		}
		br.Discard(1)
	}
	hosts := hostFields(br) // http.ReadRequest removes them from Header
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	if r.ProtoMajor != 1 {
		return nil, errors.New("505")
	}
	if r.ProtoAtLeast(1, 1) && len(hosts) == 0 && r.Method != "CONNECT" {
		return nil, errors.New("missing Host")
	}
	if len(hosts) > 1 || (len(hosts) == 1 && !validHost([]byte(hosts[0]))) {
		return nil, errors.New("bad Host")
	}
	for k, vv := range r.Header {
		for _, c := range []byte(k) {
			if !tchar[c] {
				return nil, errors.New("bad field name")
			}
		}
		for _, v := range vv {
			for _, c := range []byte(v) {
				if !vchar[c] {
					return nil, errors.New("bad field value")
				}
			}
		}
	}
	if e := r.Header.Get("Expect"); e != "" && !strings.EqualFold(e, "100-continue") {
		return nil, errors.New("417")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	return &netHTTPRequest{method: r.Method, target: r.RequestURI, host: r.Host, close: r.Close, body: body}, nil
}

// hostFields returns the values of the Host fields of the head at the
// start of br, as net/http's server sees them before ReadRequest removes
// them.
func hostFields(br *bufio.Reader) []string {
	br.Peek(1)
	p, _ := br.Peek(br.Buffered())
	var hosts []string
	for i, line := range strings.Split(string(p), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" && i > 0 {
			break
		}
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "host") {
			hosts = append(hosts, strings.Trim(value, " \t"))
		}
	}
	return hosts
}

// readH1 reads one request and its body with this package.
func readH1(br *bufio.Reader, r *Request, b *Body) ([]byte, error) {
	if err := r.Read(br, Limits{}); err != nil {
		return nil, err
	}
	b.Reset(br, r.BodyFraming(), r.ContentLength, Limits{})
	body, err := readBody(b)
	return []byte(body), err
}

// stricterHead returns why h1 may refuse a request head that net/http
// accepts, or "" if it has no reason to. These are the documented
// intentional differences.
func stricterHead(head string, h1err error) string {
	lines := strings.Split(strings.ReplaceAll(strings.TrimLeft(head, "\r\n"), "\r\n", "\n"), "\n")
	fields := map[string][]string{}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
			return "obsolete line folding"
		}
		name, value, _ := strings.Cut(l, ":")
		k := http.CanonicalHeaderKey(name)
		fields[k] = append(fields[k], strings.TrimSpace(value))
	}
	method, rest, _ := strings.Cut(lines[0], " ")
	target, proto, _ := strings.Cut(rest, " ")
	switch {
	case statusOf(h1err) == http.StatusRequestHeaderFieldsTooLarge || statusOf(h1err) == http.StatusRequestURITooLong:
		return "head limits (net/http's ReadRequest has none; its server allows 1 MiB)"
	case len(fields["Content-Length"]) > 1:
		return "more than one Content-Length, even equal ones"
	case len(fields["Content-Length"]) > 0 && len(fields["Transfer-Encoding"]) > 0:
		return "Content-Length with Transfer-Encoding"
	case proto == "HTTP/1.0" && len(fields["Transfer-Encoding"]) > 0:
		return "Transfer-Encoding in HTTP/1.0 (net/http ignores it)"
	case strings.Contains(target, "#"):
		return "fragment in the target"
	case strings.HasPrefix(proto, "HTTP/1.") && proto != "HTTP/1.1" && proto != "HTTP/1.0":
		return "HTTP/1.2 to 1.9 (505)"
	case target == "*" && method != "OPTIONS":
		return "asterisk target for a method other than OPTIONS"
	case !strings.HasPrefix(target, "/") && target != "*":
		return "absolute form: only http and https, host[:port] without escapes or user info"
	case method == "CONNECT":
		return "CONNECT (501)"
	case len(fields["Expect"]) > 0 && !strings.EqualFold(fields["Expect"][0], "100-continue"), len(fields["Expect"]) > 1:
		return "Expect must be exactly 100-continue"
	}
	return ""
}

// stricterBody returns why h1 may refuse a body that net/http accepts.
// agree compares how h1 (headErr reading the head, bodyErr the body) and
// net/http (nerr) took message msg, the bytes in: it fails the test when
// h1 accepts what net/http refuses, or refuses what net/http accepts for
// no reason that stricterHead (or stricterBody) gives. It reports whether
// both accepted it, so that the caller compares what they read.
func agree(t *testing.T, msg string, in []byte, headErr, bodyErr, nerr error, stricterHead func(head string, err error) string) bool {
	t.Helper()
	if headErr != nil || bodyErr != nil {
		if nerr == nil {
			head, _, _ := strings.Cut(string(in), "\r\n\r\n")
			why := stricterBody(bodyErr)
			if headErr != nil {
				why = stricterHead(head, headErr)
			}
			if why == "" {
				t.Fatalf("%s: h1 refuses (%v %v) what net/http accepts: %q", msg, headErr, bodyErr, in)
			}
		}
		return false
	}
	if nerr != nil {
		t.Fatalf("%s: h1 accepts what net/http refuses (%v): %q", msg, nerr, in)
	}
	return true
}

func stricterBody(h1err error) string {
	switch {
	case errors.Is(h1err, errChunkExt):
		return "chunk extensions must be field-value bytes"
	case errors.Is(h1err, errChunkSize):
		return "chunk sizes below 2^63"
	case errors.Is(h1err, ErrObsFold), errors.Is(h1err, ErrSpaceColon), errors.Is(h1err, ErrFieldName), errors.Is(h1err, errTrailerTooLong), errors.Is(h1err, ErrTooManyFields):
		return "trailer fields checked as header fields"
	case errors.Is(h1err, errTrailerLF):
		return "trailer lines end in CRLF, as chunk-size lines"
	}
	return ""
}

// countReader counts the bytes read from it.
type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func FuzzRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		src := &countReader{r: bytes.NewReader(in)}
		ours := bufio.NewReaderSize(src, 4096)
		theirs := bufio.NewReaderSize(bytes.NewReader(in), 1<<20)
		var r Request
		var b Body
		for i := 0; i < 4; i++ {
			start := src.n - ours.Buffered()
			headErr := r.Read(ours, Limits{})
			var body []byte
			var bodyErr error
			if headErr == nil {
				b.Reset(ours, r.BodyFraming(), r.ContentLength, Limits{})
				var s string
				s, bodyErr = readBody(&b)
				body = []byte(s)
			}
			n, nerr := readNetHTTP(theirs)
			if headErr == io.EOF {
				return
			}
			if !agree(t, fmt.Sprint("request ", i), in[start:], headErr, bodyErr, nerr, stricterHead) {
				return
			}
			if n.method != string(r.Method) || n.target != string(r.Target) || n.host != string(r.Host) || n.close != r.Close || !bytes.Equal(n.body, body) {
				t.Fatalf("request %d differs:\nh1:       %s %s host=%q close=%v body=%q\nnet/http: %s %s host=%q close=%v body=%q",
					i, r.Method, r.Target, r.Host, r.Close, body, n.method, n.target, n.host, n.close, n.body)
			}
		}
	})
}

// requestSeeds start the corpus: ordinary requests and the smuggling
// vectors of the tests.
var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a?b HTTP/1.1\r\nHost: a\r\nCookie: JSESSIONID=x.n1\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX: y\r\n z\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc",
	"GET http://h:80/x?y HTTP/1.1\r\nHost: h\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
	"\r\nGET /\x80%41 HTTP/1.1\nHost: h\nX:\t\xff \n\n",
	"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
}
