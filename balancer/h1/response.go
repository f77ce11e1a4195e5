package h1

import (
	"bufio"
)

// Framing is how a message body is delimited.
type Framing uint8

// The framings.
const (
	// NoBody: the message has no body.
	NoBody Framing = iota
	// Length: Content-Length bytes.
	Length
	// Chunked: chunked transfer coding.
	Chunked
	// UntilClose: the body ends when the connection closes (responses only).
	UntilClose
)

// Response is a response head. Reuse one for every response of a
// connection: Read overwrites it, and its byte slices are valid until the
// next Read.
type Response struct {
	head
	// Status is the status code, 100 to 999.
	Status int
	// Reason is the reason phrase, possibly empty.
	Reason []byte

	ends []int
}

// Read reads and checks the next response head from br; the body, if any,
// is left in br. Any error means the response must not be used.
func (r *Response) Read(br *bufio.Reader, lim Limits) error {
	lim = lim.withDefaults()
	r.reset()
	r.Status, r.Reason = 0, nil
	var err error
	if r.ends, err = r.readLines(br, lim, r.ends, nil); err != nil {
		return err
	}
	if err := r.statusLine(r.buf[:r.ends[0]]); err != nil {
		return err
	}
	if err := r.parseFields(r.ends, lim); err != nil {
		return err
	}
	if err := r.framing(); err != nil {
		return err
	}
	r.upgrade()
	return nil
}

// statusLine parses "HTTP/1.x SP 3DIGIT [SP reason]".
func (r *Response) statusLine(line []byte) error {
	if len(line) < 12 || line[8] != ' ' {
		return ErrStatusLine
	}
	minor, err := version(line[:8], ErrStatusLine)
	if err != nil {
		return err
	}
	r.Minor = minor
	d := line[9:12]
	if !isDigit(d[0]) || !isDigit(d[1]) || !isDigit(d[2]) || d[0] == '0' {
		return ErrStatusLine
	}
	r.Status = int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0')
	if len(line) > 12 {
		if line[12] != ' ' {
			return ErrStatusLine
		}
		r.Reason = line[13:]
		for _, c := range r.Reason {
			if !vchar[c] {
				return ErrStatusLine
			}
		}
	}
	return nil
}

// BodyFraming says how the response body is framed, given whether the
// request was HEAD (RFC 9112 §6.3).
func (r *Response) BodyFraming(head bool) Framing {
	switch {
	case head || r.Status < 200 || r.Status == 204 || r.Status == 304:
		return NoBody
	case r.Chunked:
		return Chunked
	case r.ContentLength >= 0:
		return Length
	}
	return UntilClose
}
