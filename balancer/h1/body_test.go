package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// readBody reads a whole body through Next and Consume.
func readBody(b *Body) (string, error) {
	var out bytes.Buffer
	for {
		p, err := b.Next()
		if err == io.EOF {
			return out.String(), nil
		}
		if err != nil {
			return out.String(), err
		}
		out.Write(p)
		b.Consume(len(p))
	}
}

func TestChunkedBody(t *testing.T) {
	tests := []struct {
		name, in, body, trailer, rest string
		err                           bool
	}{
		{name: "two chunks", in: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT", body: "hello world", rest: "NEXT"},
		{name: "hex sizes", in: "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", body: strings.Repeat("0123456789", 2)},
		{name: "extension dropped", in: "5;name=\"v\"\r\nhello\r\n0;x\r\n\r\n", body: "hello"},
		{name: "trailing white space", in: "5 \t\r\nhello\r\n0\r\n\r\n", body: "hello"},
		{name: "leading zeros", in: "0005\r\nhello\r\n0000\r\n\r\n", body: "hello"},
		{name: "trailer", in: "5\r\nhello\r\n0\r\nX-Sum: 42\r\nX-B: c\r\n\r\nNEXT", body: "hello", trailer: "X-Sum=42,X-B=c", rest: "NEXT"},
		{name: "bare LF in size line", in: "5\nhello\r\n0\r\n\r\n", err: true},
		{name: "bare CR in size line", in: "5\r;\r\nhello\r\n0\r\n\r\n", err: true},
		{name: "no CRLF after data", in: "5\r\nhelloXX0\r\n\r\n", err: true},
		{name: "LF only after data", in: "5\r\nhello\n0\r\n\r\n", err: true},
		{name: "empty size", in: "\r\nhello\r\n0\r\n\r\n", err: true},
		{name: "space before size", in: " 5\r\nhello\r\n0\r\n\r\n", err: true},
		{name: "space before extension", in: "5 ;x\r\nhello\r\n0\r\n\r\n", err: true},
		{name: "sign", in: "+5\r\nhello\r\n0\r\n\r\n", err: true},
		{name: "0x prefix", in: "0x5\r\nhello\r\n0\r\n\r\n", err: true},
		{name: "17 digits", in: "00000000000000005\r\nhello\r\n0\r\n\r\n", err: true},
		{name: "overflow", in: "8000000000000000\r\nhello\r\n0\r\n\r\n", err: true},
		{name: "control byte in extension", in: "5;\x01\r\nhello\r\n0\r\n\r\n", err: true},
		{name: "size line too long", in: "5;" + strings.Repeat("x", 5000) + "\r\nhello\r\n0\r\n\r\n", err: true},
		{name: "extensions flood", in: strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 40) + "0\r\n\r\n", err: true},
		{name: "truncated data", in: "5\r\nhel", err: true},
		{name: "truncated trailer", in: "5\r\nhello\r\n0\r\nX: 1\r\n", err: true},
		{name: "obs-fold in trailer", in: "5\r\nhello\r\n0\r\nX: 1\r\n 2\r\n\r\n", err: true},
		{name: "bad trailer field", in: "5\r\nhello\r\n0\r\nX : 1\r\n\r\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.in), 4096)
			var b Body
			b.Reset(br, Chunked, 0, Limits{})
			got, err := readBody(&b)
			if tt.err {
				if err == nil {
					t.Fatalf("read %q without error", got)
				}
				return
			}
			if err != nil || got != tt.body || !b.Done() {
				t.Fatalf("got %q, %v, done %v; want %q", got, err, b.Done(), tt.body)
			}
			var tr []string
			for _, f := range b.Trailer() {
				tr = append(tr, string(f.Name)+"="+string(f.Value))
			}
			if s := strings.Join(tr, ","); s != tt.trailer {
				t.Errorf("trailer %q, want %q", s, tt.trailer)
			}
			if rest, _ := io.ReadAll(br); string(rest) != tt.rest {
				t.Errorf("left %q, want %q", rest, tt.rest)
			}
		})
	}
}

func TestLengthAndUntilCloseBodies(t *testing.T) {
	var b Body
	br := bufio.NewReaderSize(strings.NewReader("hello worldNEXT"), 16)
	b.Reset(br, Length, 11, Limits{})
	if got, err := readBody(&b); got != "hello world" || err != nil || b.N() != 11 {
		t.Fatalf("length: %q %v n=%d", got, err, b.N())
	}
	b.Reset(bufio.NewReaderSize(strings.NewReader("hel"), 16), Length, 5, Limits{})
	if _, err := readBody(&b); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short length body: %v", err)
	}
	b.Reset(bufio.NewReaderSize(strings.NewReader(strings.Repeat("z", 100)), 16), UntilClose, 0, Limits{})
	if got, err := readBody(&b); len(got) != 100 || err != nil || !b.Done() {
		t.Fatalf("until close: %d bytes, %v", len(got), err)
	}
}

func TestCopyBodyReencodesChunks(t *testing.T) {
	in := "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Keep: 1\r\nX-Drop: 2\r\n\r\n"
	var b Body
	b.Reset(bufio.NewReader(strings.NewReader(in)), Chunked, 0, Limits{})
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	keep := func(f *Field) bool { return EqualFold(f.Name, "x-keep") }
	if err := CopyBody(w, &b, Chunk, keep); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	// The input was read in one piece: one chunk per piece the reader held.
	want := "3\r\nabc\r\n2\r\nde\r\n0\r\nX-Keep: 1\r\n\r\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	b.Reset(bufio.NewReader(strings.NewReader("3\r\nabc\r\n0\r\n\r\n")), Chunked, 0, Limits{})
	out.Reset()
	if err := CopyBody(w, &b, Raw, nil); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if out.String() != "abc" {
		t.Fatalf("decoded: %q", out.String())
	}
}

func TestResponseHeads(t *testing.T) {
	tests := []struct {
		name, in string
		head     bool
		status   int
		framing  Framing
		close    bool
		err      bool
	}{
		{name: "length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", status: 200, framing: Length},
		{name: "no reason", in: "HTTP/1.1 204\r\n\r\n", status: 204, framing: NoBody},
		{name: "empty reason", in: "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", status: 404, framing: Length},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", status: 200, framing: Chunked},
		{name: "until close", in: "HTTP/1.1 200 OK\r\n\r\n", status: 200, framing: UntilClose},
		{name: "HTTP/1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", status: 200, framing: Length, close: true},
		{name: "head", in: "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", head: true, status: 200, framing: NoBody},
		{name: "not modified", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 500\r\n\r\n", status: 304, framing: NoBody},
		{name: "continue", in: "HTTP/1.1 100 Continue\r\n\r\n", status: 100, framing: NoBody},
		{name: "close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", status: 200, framing: Length, close: true},
		{name: "length and chunked", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", err: true},
		{name: "two lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", err: true},
		{name: "gzip", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", err: true},
		{name: "obs-fold", in: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", err: true},
		{name: "bad status", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: true},
		{name: "status 099", in: "HTTP/1.1 099 OK\r\n\r\n", err: true},
		{name: "HTTP/2", in: "HTTP/2.0 200 OK\r\n\r\n", err: true},
		{name: "not HTTP", in: "ICY 200 OK\r\n\r\n", err: true},
		{name: "control in reason", in: "HTTP/1.1 200 O\x01K\r\n\r\n", err: true},
		{name: "truncated", in: "HTTP/1.1 200 OK\r\nX: 1\r\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Response
			err := r.Read(bufio.NewReader(strings.NewReader(tt.in)), Limits{})
			if tt.err {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tt.status || r.BodyFraming(tt.head) != tt.framing || r.Close != tt.close {
				t.Fatalf("status %d framing %d close %v", r.Status, r.BodyFraming(tt.head), r.Close)
			}
		})
	}
}
