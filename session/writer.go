package session

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// writer commits the session before the first byte of the response goes
// out, and replaces the response if the commit fails. Other
// http.ResponseController methods reach the underlying writer through
// Unwrap.
type writer struct {
	http.ResponseWriter
	s       *Session
	r       *http.Request
	started bool  // the commit has run
	failed  error // the commit failed and the error response was written
}

// begin commits the session once and reports whether the handler's
// response may proceed.
func (w *writer) begin() bool {
	if w.started {
		return w.failed == nil
	}
	w.started = true
	if err := w.s.commit(w.Header()); err != nil {
		w.failed = err
		w.s.m.fail(w.ResponseWriter, w.r, err)
		return false
	}
	return true
}

// WriteHeader commits, then writes the status. Informational statuses
// (1xx but 101) are not the response yet and pass through.
func (w *writer) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.begin() {
		w.ResponseWriter.WriteHeader(code)
	}
}

// Write commits, then writes b; after a failed commit it writes nothing
// and returns the commit's error.
func (w *writer) Write(b []byte) (int, error) {
	if !w.begin() {
		return 0, w.failed
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom commits, then copies from src, keeping the underlying writer's
// sendfile path.
func (w *writer) ReadFrom(src io.Reader) (int64, error) {
	if !w.begin() {
		return 0, w.failed
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}

// Flush commits, then flushes.
func (w *writer) Flush() { _ = w.FlushError() }

// FlushError commits, then flushes, for http.ResponseController.
func (w *writer) FlushError() error {
	if !w.begin() {
		return w.failed
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack commits, then hijacks the connection. The session is saved, but a
// cookie the commit set is not sent: don't create sessions in requests you
// hijack.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.begin() {
		return nil, nil, w.failed
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
