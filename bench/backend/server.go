package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	wire "github.com/tetherlb/tether/balancer/h1"
	"github.com/tetherlb/tether/bench/h1"
)

// BigSize is the body size of GET /big.
const BigSize = 64 << 10

// maxHead bounds the request line plus headers of one request.
const maxHead = 16 << 10

// server answers every connection of one listener with canned responses.
type server struct {
	route string
	small []byte // body of every path but /big: "node <route>\n"
	big   []byte // body of /big
}

func newServer(rt string) *server {
	big := bytes.Repeat([]byte("0123456789abcdef"), BigSize/16)
	return &server{route: rt, small: []byte("node " + rt + "\n"), big: big}
}

func (s *server) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go s.handle(c)
	}
}

// request is what the server needs to know of one parsed request.
type request struct {
	head      bool // HEAD: answer without a body
	big       bool // GET /big
	session   bool // carries a JSESSIONID cookie
	keepAlive bool
	bodyLen   int64
}

var (
	errTooLarge = errors.New("request head too large")
	errBad      = errors.New("malformed request")
	errChunked  = errors.New("chunked request bodies are not supported")
)

// handle serves the requests of one connection until the client closes
// it or asks to close it. Responses are flushed when no further pipelined
// request is already buffered.
func (s *server) handle(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, maxHead)
	bw := bufio.NewWriterSize(c, 4<<10)
	for {
		req, err := readRequest(br)
		if err != nil {
			if err != io.EOF && s.refuse(bw, err) {
				lingerClose(c)
			}
			return
		}
		if req.bodyLen > 0 {
			if _, err := br.Discard(int(req.bodyLen)); err != nil {
				return
			}
		}
		if err := s.respond(bw, req); err != nil {
			return
		}
		if !req.keepAlive {
			bw.Flush()
			return
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

// respond writes the response to req.
func (s *server) respond(bw *bufio.Writer, req request) error {
	body := s.small
	if req.big {
		body = s.big
	}
	bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(body)))
	bw.WriteString("\r\nX-Node: ")
	bw.WriteString(s.route)
	bw.WriteString("\r\n")
	if !req.session {
		var id [16]byte
		rand.Read(id[:]) // never fails (crypto/rand, Go 1.24+)
		var hx [32]byte
		hex.Encode(hx[:], id[:])
		bw.WriteString("Set-Cookie: JSESSIONID=")
		bw.Write(hx[:])
		bw.WriteString(".")
		bw.WriteString(s.route)
		bw.WriteString("; Path=/\r\n")
	}
	if !req.keepAlive {
		bw.WriteString("Connection: close\r\n")
	}
	_, err := bw.WriteString("\r\n")
	if !req.head {
		_, err = bw.Write(body)
	}
	return err
}

// refuse answers a request that cannot be served, before closing, and
// reports whether it did.
func (s *server) refuse(bw *bufio.Writer, err error) bool {
	status := "400 Bad Request"
	switch {
	case errors.Is(err, errTooLarge):
		status = "431 Request Header Fields Too Large"
	case errors.Is(err, errChunked):
		status = "501 Not Implemented"
	case !errors.Is(err, errBad):
		return false // the connection failed: nobody to answer
	}
	bw.WriteString("HTTP/1.1 " + status + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	return bw.Flush() == nil
}

// lingerClose half-closes c and reads what the client still sends for a
// moment, so that the refusal reaches it instead of a reset.
func lingerClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(c, 1<<20))
}

// readRequest parses one request head from br. It returns io.EOF when the
// connection ends cleanly between requests.
func readRequest(br *bufio.Reader) (request, error) {
	var req request
	line, err := br.ReadSlice('\n')
	if err != nil {
		return req, lineErr(err, len(line) == 0)
	}
	total := len(line)
	method, rest, ok := bytes.Cut(h1.TrimEOL(line), []byte(" "))
	target, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok || !ok2 || len(target) == 0 {
		return req, errBad
	}
	switch string(proto) {
	case "HTTP/1.1":
		req.keepAlive = true
	case "HTTP/1.0":
	default:
		return req, errBad
	}
	req.head = string(method) == "HEAD"
	path, _, _ := bytes.Cut(target, []byte("?"))
	req.big = string(path) == "/big"
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return req, lineErr(err, false)
		}
		if total += len(line); total > maxHead {
			return req, errTooLarge
		}
		line = h1.TrimEOL(line)
		if len(line) == 0 {
			return req, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return req, errBad
		}
		value = bytes.TrimSpace(value)
		switch {
		case wire.EqualFold(name, "cookie"):
			req.session = req.session || hasCookie(value, "JSESSIONID")
		case wire.EqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return req, errBad
			}
			req.bodyLen = n
		case wire.EqualFold(name, "transfer-encoding"):
			return req, errChunked
		case wire.EqualFold(name, "connection"):
			switch {
			case wire.EqualFold(value, "close"):
				req.keepAlive = false
			case wire.EqualFold(value, "keep-alive"):
				req.keepAlive = true
			}
		}
	}
}

// lineErr maps a ReadSlice error: a full buffer is a head too large, an
// end of input before anything was read is a clean close.
func lineErr(err error, empty bool) error {
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return errTooLarge
	case err == io.EOF && empty:
		return io.EOF
	}
	return err
}

// hasCookie reports whether a Cookie header value has a cookie called name.
func hasCookie(v []byte, name string) bool {
	for len(v) > 0 {
		var pair []byte
		pair, v, _ = bytes.Cut(v, []byte(";"))
		n, _, ok := bytes.Cut(bytes.TrimSpace(pair), []byte("="))
		if ok && string(n) == name {
			return true
		}
	}
	return false
}
