package balancer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/tetherlb/tether/ajp"
)

// The net/http engine: a Balancer is an http.Handler over
// httputil.ReverseProxy and an http.Transport. It serves TLS listeners
// (with HTTP/2 to clients) and any listener configured for it.

// httpExchange is the net/http engine's state of one request, kept in
// its attempt and reused from request to request.
type httpExchange struct {
	in   *http.Request
	w    responseWriter
	body trackedBody
}

func (h *httpExchange) localAddr() net.Addr {
	addr, _ := h.in.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return addr
}

func (h *httpExchange) ajpForward() *ajp.Forward { return ajp.ForwardOf(h.in) }

// bodyRead is -1: the engine reports the declared length.
func (h *httpExchange) bodyRead() int64 { return -1 }

// ServeHTTP routes and proxies one request.
func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := b.reqs.Get().(*attempt)
	a.begin(b, b.cur.Load())
	if a.h == nil {
		a.h = new(httpExchange)
	}
	h := a.h
	h.in, h.w = r, responseWriter{ResponseWriter: w, a: a}
	a.cl = h
	a.req = request{
		method: r.Method, target: r.RequestURI, query: r.URL.RawQuery, host: r.Host,
		cookies: r.Header["Cookie"], bodyLen: r.ContentLength, tls: r.TLS != nil, ctx: r.Context(),
		userAgent: r.Header.Get("User-Agent"), referer: r.Header.Get("Referer"),
	}
	if a.req.target == "" {
		a.req.target = r.URL.Path
	}
	a.req.setRemote(r.RemoteAddr)
	a.bytesIn = max(r.ContentLength, 0)
	defer b.finish(a)

	if err := a.checkLimits(); err != nil {
		b.fail(a, err)
		return
	}
	if max := a.s.opts.MaxBodyBytes; max > 0 {
		r.Body = http.MaxBytesReader(&h.w, r.Body, max)
	}
	if err := a.choose(); err != nil {
		b.fail(a, err)
		return
	}
	ctx := context.WithValue(r.Context(), attemptKey{}, a)
	b.proxy.ServeHTTP(&h.w, r.WithContext(ctx))
}

type attemptKey struct{}

func attemptOf(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// headerPrior reads incoming forwarding headers from an http.Header.
type headerPrior http.Header

func (h headerPrior) values(name string) []string { return h[name] }

// rewrite builds the outgoing request: the member's URL, the forwarding
// headers, and a body that survives a retry.
func (b *Balancer) rewrite(pr *httputil.ProxyRequest) {
	a := attemptOf(pr.In.Context())
	pr.Out.URL = target(a.member, pr.In.URL, pr.Out.URL)
	if a.s.opts.RewriteHost {
		pr.Out.Host = ""
	}
	in := headerPrior(pr.In.Header)
	f := a.forwarding(in)
	// One array for the four values, built in a buffer kept with the attempt.
	vals := make([]string, 4)
	vals[0] = a.req.clientIP
	if f.trusted {
		a.scratch = a.appendXFF(a.scratch[:0], &f, in)
		vals[0] = string(a.scratch)
	}
	vals[1], vals[2] = f.host, f.proto
	a.scratch = a.appendForwarded(a.scratch[:0], &f, in)
	vals[3] = string(a.scratch)
	h := pr.Out.Header
	h["X-Forwarded-For"], h["X-Forwarded-Host"] = vals[0:1:1], vals[1:2:2]
	h["X-Forwarded-Proto"], h["Forwarded"] = vals[2:3:3], vals[3:4:4]
	if a.s.rewritesCookies() {
		a.rewriteCookies(h)
	}
	if pr.Out.Body != nil && pr.Out.Body != http.NoBody {
		a.h.body = trackedBody{rc: pr.Out.Body, a: a}
		pr.Out.Body = &a.h.body
	}
}

// target returns the URL of in on member m, reusing out's storage.
func target(m *Member, in, out *url.URL) *url.URL {
	base := m.url
	out.Scheme, out.Host = base.Scheme, base.Host
	out.Path, out.RawPath = in.Path, in.RawPath
	if base.Path != "" && base.Path != "/" {
		out.Path = strings.TrimSuffix(base.Path, "/") + in.Path
		if in.RawPath != "" {
			out.RawPath = strings.TrimSuffix(base.EscapedPath(), "/") + in.RawPath
		}
	}
	return out
}

// roundTripper sends the request to the chosen member and, when that
// fails in a way that allows it, to the next one.
type roundTripper struct{ b *Balancer }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	a := attemptOf(req.Context())
	var resp *http.Response
	err := a.forward(func(m *Member) error {
		if len(a.tried) > 1 { // a retry: the request was built for another member
			r2, u := *req, *req.URL
			r2.URL = target(m, a.h.in.URL, &u)
			req = &r2
		}
		var err error
		if c := m.ajp.Load(); c != nil {
			resp, err = c.Do(req, a.forwardOf(headerPrior(a.h.in.Header)))
		} else {
			resp, err = a.s.transport.RoundTrip(req)
		}
		return err
	})
	return resp, err
}

// modifyResponse watches the member's response for session cookies.
func (b *Balancer) modifyResponse(resp *http.Response) error {
	a := attemptOf(resp.Request.Context())
	if a == nil || a.active == nil {
		return nil
	}
	b.trackSessions(a, resp.Header["Set-Cookie"])
	if a.s.opts.Sticky == StickyRoute {
		return nil
	}
	lines := resp.Header["Set-Cookie"]
	for i, line := range lines {
		if v, ok := a.prefixSetCookie(a.scratch[:0], line); ok {
			lines[i], a.scratch = string(v), v
		}
	}
	if len(a.setCookie) > 0 {
		resp.Header["Set-Cookie"] = append(lines, string(a.setCookie))
		if a.s.opts.Cookie.NoCache {
			resp.Header.Add("Cache-Control", "private")
		}
	}
	return nil
}

// rewriteCookies rewrites the outgoing Cookie headers for the member (see
// appendCookieHeader); a header left empty is dropped.
func (a *attempt) rewriteCookies(h http.Header) {
	in := h["Cookie"]
	if len(in) == 0 {
		return
	}
	out := in[:0]
	for _, v := range in {
		nv, ok := a.appendCookieHeader(a.scratch[:0], v)
		a.scratch = nv
		switch {
		case !ok:
		case string(nv) == v:
			out = append(out, v)
		default:
			out = append(out, string(nv))
		}
	}
	if len(out) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = out
}

// proxyError answers a request the proxy could not complete.
func (b *Balancer) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	a := attemptOf(r.Context())
	if r.Context().Err() != nil && !errors.Is(err, ErrTimeout) {
		a.err = context.Canceled
		a.status = 499 // nginx's "client closed request", for the log only
		return
	}
	b.fail(a, err)
}

// fail answers with the status of err and a short body naming the balancer.
func (b *Balancer) fail(a *attempt, err error) {
	p := a.errorPage(err)
	h := a.h.w.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	if p.close {
		h.Set("Connection", "close")
	}
	a.h.w.WriteHeader(p.status)
	io.WriteString(&a.h.w, p.body)
}

// trackedBody wraps the request body so that a retry can tell whether any
// of it was consumed, and so that the transport closing it after a failed
// attempt does not close the client's body.
type trackedBody struct {
	rc io.ReadCloser
	a  *attempt
}

func (t *trackedBody) Read(p []byte) (int, error) {
	t.a.bodyStarted = true
	n, err := t.rc.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = ErrBodyTooLarge
	} else if err != nil && t.brokenChunks(err) {
		err = fmt.Errorf("%w: %w", ErrBadRequestBody, err)
	}
	return n, err
}

// brokenChunks reports whether err, from reading an HTTP/1.1 chunked
// body, is net/http's report of a broken framing (its errors are not
// exported): any error but the end, a connection cut short or failing,
// or the client gone.
func (t *trackedBody) brokenChunks(err error) bool {
	in := t.a.h.in
	if in.ProtoMajor != 1 || len(in.TransferEncoding) == 0 || in.TransferEncoding[0] != "chunked" || in.Context().Err() != nil {
		return false
	}
	var ne net.Error
	return err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &ne) && !errors.Is(err, net.ErrClosed)
}

// Close does nothing: the server closes the client's body.
func (t *trackedBody) Close() error { return nil }

// responseWriter counts what is written to the client. It unwraps, so the
// proxy can flush and hijack (WebSocket) through it.
type responseWriter struct {
	http.ResponseWriter
	a *attempt
}

func (w *responseWriter) WriteHeader(code int) {
	if w.a.status == 0 || w.a.status < 200 {
		w.a.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.a.status == 0 {
		w.a.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.a.written += int64(n)
	return n, err
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

const bufSize = 32 * 1024

// bufferPool lends the proxy its copy buffers. It pools array pointers, so
// that neither Get nor Put allocates.
type bufferPool struct{ p *sync.Pool }

func newBufferPool() bufferPool {
	return bufferPool{&sync.Pool{New: func() any { return new([bufSize]byte) }}}
}

func (bp bufferPool) Get() []byte { return bp.p.Get().(*[bufSize]byte)[:] }

func (bp bufferPool) Put(b []byte) {
	if cap(b) >= bufSize {
		bp.p.Put((*[bufSize]byte)(b[:bufSize]))
	}
}
