package balancer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/tetherlb/tether/balancer/h1"
)

// expectContinueTimeout is how long a request that expects 100 Continue
// waits for the member's answer before its body is sent anyway (as
// net/http's Transport.ExpectContinueTimeout in the net/http engine).
const expectContinueTimeout = time.Second

var (
	// errNoResponse: the member closed or reset the connection before
	// sending any byte of a response.
	errNoResponse = errors.New("the member closed the connection without answering")
	// errBadResponse: the member's response is malformed.
	errBadResponse = errors.New("malformed response from the member")
)

// headWriteError: writing the request head (with any body bytes still
// kept in the client's buffer) to the member failed; the client's body
// was not consumed.
type headWriteError struct{ err error }

func (e *headWriteError) Error() string { return "writing the request: " + e.err.Error() }
func (e *headWriteError) Unwrap() error { return e.err }

// send sends the request to member m and reads its response head; it is
// the native engine's sender for attempt.forward. A pooled keep-alive
// connection that turns out to be closed is replaced by a new one to the
// same member, transparently, when the request is safe to send again (see
// stale).
func (x *exchange) send(m *Member) error {
	if c := m.ajp.Load(); c != nil {
		return x.sendAJP(m, c)
	}
	a := x.a
	for fresh := false; ; fresh = true {
		mc, err := x.memberConn(m, fresh)
		if err != nil {
			return err
		}
		err = x.roundTrip(mc, m)
		if err == nil {
			x.mc = mc
			return nil
		}
		mc.Close()
		if fresh || !mc.Reused || a.clientFailed || !x.stale(err) {
			return err
		}
	}
}

// replayable reports whether the request may be sent twice: idempotent
// and without a body (net/http's rule for retrying on a new connection).
func (x *exchange) replayable() bool {
	return idempotent(x.a.req.method) && !x.a.req.hasBody()
}

// stale reports whether err, on a reused connection, shows that the
// member had closed it while it was idle, so that the request can be sent
// again on a new connection to the same member: when writing the head
// failed (the member cannot have read a whole request, and the body is
// still in the client's buffer), or when a replayable request got no byte
// of response before the connection ended.
func (x *exchange) stale(err error) bool {
	var hw *headWriteError
	if errors.As(err, &hw) {
		return !x.a.bodyStarted
	}
	return errors.Is(err, errNoResponse) && x.replayable()
}

// memberConn returns an idle connection to m, or a new one if fresh or if
// there is none. A request that is not replayable gets only a connection
// checked to be open.
func (x *exchange) memberConn(m *Member, fresh bool) (*h1.Conn, error) {
	if !fresh && x.a.s.opts.SendProxy == 0 { // a PROXY header names one client: no reuse
		check := !x.replayable()
		for {
			mc := m.conns.Get()
			if mc == nil {
				break
			}
			if !check || mc.Alive() {
				return mc, nil
			}
			mc.Close()
		}
	}
	var hdr []byte
	if x.a.s.opts.SendProxy != 0 {
		hdr = x.a.proxyHeader(nil)
	}
	return dial(x.a.s, m, hdr)
}

// dial connects to m (see dialMember), sending hdr first if set. Errors
// are *net.OpError with Op "dial": nothing was sent.
func dial(s *settings, m *Member, hdr []byte) (*h1.Conn, error) {
	nc, err := s.dialMember(context.Background(), m, hdr)
	if err != nil {
		return nil, err
	}
	return m.conns.NewConn(nc), nil
}

// roundTrip writes the request to mc and reads the response head.
func (x *exchange) roundTrip(mc *h1.Conn, m *Member) error {
	x.writeHead(mc.W, m)
	inline := x.inlineBody(mc.W)
	timeout := x.a.s.opts.ResponseTimeout
	var err error
	whole := (inline > 0 || x.body.Done()) && !x.expect
	if whole {
		// The whole request goes out at once: the wait for the response
		// can begin before it (see h1.Conn.FlushAndWait).
		mc.SetReadDeadline(time.Now().Add(timeout))
		err = mc.FlushAndWait()
	} else {
		err = mc.W.Flush()
	}
	if err != nil {
		return &headWriteError{err}
	}
	if inline > 0 {
		x.a.bodyStarted = true
		x.body.Consume(inline)
	}
	if !x.body.Done() {
		if x.expect {
			if err := x.awaitContinue(mc); err != nil || x.early {
				return err
			}
		}
		if err := x.sendBody(mc); err != nil {
			return err
		}
	}
	if whole {
		return x.readResponse(mc, 0) // its deadline is set
	}
	return x.readResponse(mc, timeout)
}

// inlineBody writes a Content-Length body that is wholly in the client's
// buffer along with the head, without consuming it, and returns its size.
func (x *exchange) inlineBody(w *bufio.Writer) int {
	if x.body.Framing() != h1.Length || x.expect || x.body.N() > 0 {
		return 0
	}
	br := x.c.Reader()
	n := x.req.ContentLength
	if n > int64(br.Buffered()) {
		return 0
	}
	p, _ := br.Peek(int(n))
	w.Write(p)
	return int(n)
}

// sendBody streams the request body to the member.
func (x *exchange) sendBody(mc *h1.Conn) error {
	a := x.a
	a.bodyStarted = true
	enc := h1.Raw
	if x.body.Framing() == h1.Chunked {
		enc = h1.Chunk
	}
	err := h1.CopyBody(mc.W, &x.body, enc, keepTrailer)
	if err == nil {
		err = mc.W.Flush()
	} else if errors.Is(err, h1.ErrBodyTooLarge) {
		return ErrBodyTooLarge
	} else if bad := badBody(err); bad != nil {
		return bad
	} else if werr := (*h1.WriteError)(nil); !errors.As(err, &werr) {
		a.clientFailed = true // the client's body broke off
	}
	return err
}

// badBody returns err as an ErrBadRequestBody if it is the body reader's
// report of a malformed request body (an *h1.Error of status 400: broken
// chunked framing), else nil.
func badBody(err error) error {
	var he *h1.Error
	if errors.As(err, &he) && he.Status == http.StatusBadRequest {
		return fmt.Errorf("%w: %w", ErrBadRequestBody, err)
	}
	return nil
}

// keepTrailer says which trailer fields are passed on: all but those that
// belong to the connection or frame the message.
func keepTrailer(f *h1.Field) bool {
	switch f.Class {
	case h1.Host, h1.ContentLength:
		return false
	}
	return !f.Class.HopByHop() && !f.Hop
}

// awaitContinue waits up to a second for the member's answer to a
// request that expects 100 Continue. A 100 Continue is passed to the
// client, which then sends the body; on silence the balancer sends its
// own, as net/http does; a final response means the body is not wanted
// (x.early: the body stays unread, and both connections close after).
func (x *exchange) awaitContinue(mc *h1.Conn) error {
	mc.SetReadDeadline(time.Now().Add(expectContinueTimeout))
	if _, err := mc.R.Peek(1); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return noResponse(err)
		}
		return x.continue100()
	}
	if err := x.readResponse(mc, x.a.s.opts.ResponseTimeout); err != nil {
		return err
	}
	if mc.Resp.Status == http.StatusContinue {
		return nil // passed on: the client sends its body now
	}
	x.early = true
	x.c.SetClose(true)
	return nil
}

// continue100 tells the client to send its body.
func (x *exchange) continue100() error {
	if x.sent100 {
		return nil
	}
	x.sent100 = true
	w := x.c.Writer()
	w.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	if err := w.Flush(); err != nil {
		x.a.clientFailed = true
		return err
	}
	return nil
}

// readResponse reads the member's response head within timeout (0: by
// the read deadline the caller set), passing interim (1xx) responses to
// the client. It stops at the final response,
// or after a 100 Continue when the request's body is still to be sent.
func (x *exchange) readResponse(mc *h1.Conn, timeout time.Duration) error {
	if timeout > 0 { // else the caller set the deadline
		mc.SetReadDeadline(time.Now().Add(timeout))
	}
	for n := 0; ; n++ {
		if _, err := mc.R.Peek(1); err != nil {
			return noResponse(err)
		}
		if err := mc.Resp.Read(mc.R, h1.Limits{}); err != nil {
			return fmt.Errorf("%w: %w", errBadResponse, err)
		}
		st := mc.Resp.Status
		if st >= 200 || (st == http.StatusSwitchingProtocols && x.req.Upgrade != nil) {
			break
		}
		if st == http.StatusSwitchingProtocols || n == 10 {
			return fmt.Errorf("%w: unexpected %d", errBadResponse, st)
		}
		if err := x.interim(mc); err != nil {
			return err
		}
		if st == http.StatusContinue && !x.body.Done() {
			return nil // the caller sends the body, then reads on
		}
	}
	if mc.Resp.Status == http.StatusSwitchingProtocols {
		mc.SetReadDeadline(time.Time{}) // the tunnel has no time limit
	}
	// Otherwise the deadline stays until relay knows whether it reads
	// more from the member: most small bodies came with the head.
	for i := range mc.Resp.Fields {
		if f := &mc.Resp.Fields[i]; f.Class == h1.SetCookie {
			x.setCookies = append(x.setCookies, unsafeString(f.Value))
		}
	}
	return nil
}

// noResponse classifies an error met before any byte of a response.
func noResponse(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("%w: %w", errNoResponse, err)
	}
	return err // timeouts stay net.Errors: classify sees them
}

// interim passes a 1xx response to an HTTP/1.1 client (an HTTP/1.0 client
// gets none, RFC 9110 §15.2); a second 100 Continue is dropped.
func (x *exchange) interim(mc *h1.Conn) error {
	r := &mc.Resp
	if x.req.Minor == 0 || (r.Status == http.StatusContinue && x.sent100) {
		return nil
	}
	if r.Status == http.StatusContinue {
		x.sent100 = true
	}
	w := x.c.Writer()
	h1.WriteStatusLine(w, 1, r.Status, r.Reason)
	for i := range r.Fields {
		if f := &r.Fields[i]; !f.Class.HopByHop() && !f.Hop {
			h1.WriteField(w, f.Name, f.Value)
		}
	}
	w.WriteString("\r\n")
	if err := w.Flush(); err != nil {
		x.a.clientFailed = true
		return err
	}
	return nil
}
