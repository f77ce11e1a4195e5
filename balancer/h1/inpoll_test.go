package h1

import (
	"bufio"
	"errors"
	"testing"
)

// FuzzWholeHead: wholeHead says a head is whole exactly when reading it
// from a buffer holding b cannot ask for more input. Were it wrong one
// way, a polled connection would read a head through a reader that
// cannot wait (and refuse a good request); the other way, it would leave
// the poller's wait for every request.
func FuzzWholeHead(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("\r\nGET / HTTP/1.1\nHost: a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		src := &thenBlock{b: b}
		br := bufio.NewReaderSize(src, len(b)+16)
		var req Request
		err := req.Read(br, Limits{MaxHeadBytes: 1 << 20})
		asked := src.asked
		if wholeHead(b) && asked {
			t.Fatalf("wholeHead(%q), but reading it asked for more (%v)", b, err)
		}
		// Without it, reading may still end early, but only in a refusal
		// decided by the bytes already there (a bare CR, a line too long).
		var e *Error
		if !wholeHead(b) && !asked && !errors.As(err, &e) {
			t.Fatalf("not wholeHead(%q), but reading it ended without more: %v", b, err)
		}
	})
}

// errBlocked: thenBlock has nothing more.
var errBlocked = errors.New("would block")

// thenBlock returns b, then errBlocked, and says whether it was asked for
// more than b.
type thenBlock struct {
	b     []byte
	asked bool
}

func (r *thenBlock) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		r.asked = true
		return 0, errBlocked
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
