package balancer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

func attemptOf(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// rewrite builds the outgoing request: the member's URL, the forwarding
// headers, and a body that survives a retry.
func (b *Balancer) rewrite(pr *httputil.ProxyRequest) {
	a := attemptOf(pr.In.Context())
	pr.Out.URL = target(a.member, pr.In.URL, pr.Out.URL)
	if a.s.opts.RewriteHost {
		pr.Out.Host = ""
	}
	a.forwarded(pr)
	if pr.Out.Body != nil && pr.Out.Body != http.NoBody {
		a.body.rc = pr.Out.Body
		pr.Out.Body = &a.body
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

// forwarded sets X-Forwarded-For/-Host/-Proto and Forwarded. The incoming
// ones are kept and extended only from trusted proxies; ReverseProxy has
// already removed them all from the outgoing request.
func (a *attempt) forwarded(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	ap, err := netip.ParseAddrPort(in.RemoteAddr)
	client := ap.Addr().Unmap()
	trusted := err == nil && a.trusted(client)
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	host := in.Host
	if trusted {
		if v := in.Header["X-Forwarded-Proto"]; len(v) > 0 {
			proto = v[0]
		}
		if v := in.Header["X-Forwarded-Host"]; len(v) > 0 {
			host = v[0]
		}
	}
	ip := ""
	if err == nil {
		ip = client.String()
	}
	xff := ip
	if prior := in.Header["X-Forwarded-For"]; trusted && len(prior) > 0 {
		xff = strings.Join(prior, ", ") + ", " + ip
	}
	out.Header["X-Forwarded-For"] = []string{xff}
	out.Header["X-Forwarded-Host"] = []string{host}
	out.Header["X-Forwarded-Proto"] = []string{proto}
	elem := forwardedElement(client, err == nil, host, proto)
	if prior := in.Header["Forwarded"]; trusted && len(prior) > 0 {
		elem = strings.Join(prior, ", ") + ", " + elem
	}
	out.Header["Forwarded"] = []string{elem}
}

func (a *attempt) trusted(ip netip.Addr) bool {
	for _, p := range a.s.opts.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardedElement is an RFC 7239 element: for=…;host=…;proto=….
func forwardedElement(ip netip.Addr, known bool, host, proto string) string {
	var forNode string
	switch {
	case !known:
		forNode = "unknown"
	case ip.Is6():
		forNode = `"[` + ip.String() + `]"`
	default:
		forNode = ip.String()
	}
	return "for=" + forNode + ";host=" + strconv.Quote(host) + ";proto=" + proto
}

// roundTripper sends the request to the chosen member and, when that
// fails in a way that allows it, to the next one.
type roundTripper struct{ b *Balancer }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	a := attemptOf(req.Context())
	s := a.s
	for {
		m := a.member
		a.tried = append(a.tried, m)
		m.inflight.Add(1)
		resp, err := s.transport.RoundTrip(req)
		if err == nil {
			a.active = m
			m.requests.Add(1)
			if m.consecutive.Load() != 0 {
				m.consecutive.Store(0)
			}
			return resp, nil
		}
		m.inflight.Add(-1)
		if req.Context().Err() != nil {
			return nil, err // the client went away: not the member's fault
		}
		notSent, timeout := classify(err)
		if notSent || timeout {
			rt.b.failed(s, m, err)
		}
		if !a.canRetry(err, notSent) {
			if notSent && a.home == m && a.s.opts.NoFailover {
				return nil, fmt.Errorf("%w: %w", ErrNoFailover, err)
			}
			return nil, wrap(err, timeout)
		}
		next, outcome, nerr := a.next()
		if nerr != nil {
			return nil, wrap(err, timeout)
		}
		if a.home != nil && outcome == Failover {
			a.outcome = Failover
		}
		a.member = next
		r2, u := *req, *req.URL
		r2.URL = target(next, a.in.URL, &u)
		req = &r2
	}
}

func wrap(err error, timeout bool) error {
	if timeout {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrConnect, err)
}

// failed counts a connection failure or timeout against m and takes it
// down after Failures of them in a row.
func (b *Balancer) failed(s *settings, m *Member, err error) {
	m.failures.Add(1)
	if int(m.consecutive.Add(1)) >= s.opts.Failures && m.Healthy() {
		s.checker.MarkDown(m, err.Error())
	}
}

// proxyError answers a request the proxy could not complete.
func (b *Balancer) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	a := attemptOf(r.Context())
	if r.Context().Err() != nil && !errors.Is(err, ErrTimeout) {
		a.err = context.Canceled
		a.w.status = 499 // nginx's "client closed request", for the log only
		return
	}
	b.fail(a, err)
}

// fail answers with the status of err and a short body naming the balancer.
func (b *Balancer) fail(a *attempt, err error) {
	a.err = err
	if errors.Is(err, ErrNoFailover) {
		a.outcome = Rejected
	}
	status := statusOf(err)
	h := a.w.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(a.retryAfter()))
	}
	if status == http.StatusRequestEntityTooLarge || status == http.StatusRequestURITooLong {
		h.Set("Connection", "close")
	}
	a.w.WriteHeader(status)
	fmt.Fprintf(&a.w, "%d %s: balancer %q: %s\n", status, http.StatusText(status), a.s.opts.Name, publicMessage(err))
}

// retryAfter is how many seconds a client should wait: the probe interval,
// after which an unavailable member is back if it can be.
func (a *attempt) retryAfter() int {
	d := a.s.opts.Health.ProbeInterval
	if d <= 0 {
		return 1
	}
	return max(1, int((d+999_999_999)/1_000_000_000))
}

// publicMessage says what went wrong without internal detail.
func publicMessage(err error) string {
	switch {
	case errors.Is(err, ErrNoFailover):
		return "the member holding this session is unavailable; try again shortly"
	case errors.Is(err, ErrNoMember):
		return "no member is available"
	case errors.Is(err, ErrTimeout):
		return "the member did not answer in time"
	case errors.Is(err, ErrURITooLong):
		return "request URI too long"
	case errors.Is(err, ErrBodyTooLarge), statusOf(err) == http.StatusRequestEntityTooLarge:
		return "request body too large"
	}
	return "could not reach a member"
}
