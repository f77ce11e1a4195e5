package balancer

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/tetherlb/tether/ajp"
	"github.com/tetherlb/tether/balancer/h1"
)

// exchange is the native engine's state of one request, kept in its
// attempt and reused from request to request.
type exchange struct {
	a    *attempt
	c    *h1.ServerConn
	req  *h1.Request
	body h1.Body  // the request body, read from the client
	mc   *h1.Conn // the member connection holding the response

	ajpResp *http.Response // the response of an ajp:// member, instead of mc

	cookies    []string // the request's Cookie values, viewing req's buffer
	setCookies []string // the response's Set-Cookie values, viewing mc's buffer
	limited    io.LimitedReader
	expect     bool // 100-continue is passed to the member
	sent100    bool // a 100 Continue was sent to the client
	early      bool // the member answered before the body was sent
}

func (x *exchange) reset() {
	clear(x.setCookies[:cap(x.setCookies)])
	clear(x.cookies[:cap(x.cookies)])
	*x = exchange{body: x.body, cookies: x.cookies[:0], setCookies: x.setCookies[:0]}
}

func (x *exchange) localAddr() net.Addr { return x.c.NetConn().LocalAddr() }

func (x *exchange) ajpForward() *ajp.Forward {
	return ajp.ForwardFor(x.a.req.remoteAddr, x.a.req.host, x.localAddr(), x.c.TLSState())
}

func (x *exchange) bodyRead() int64 { return x.body.N() }

// serveConn routes and proxies one request read by the native engine.
func (b *Balancer) serveConn(c *h1.ServerConn, req *h1.Request) {
	a := b.reqs.Get().(*attempt)
	a.begin(b, b.cur.Load())
	if a.x == nil {
		a.x = new(exchange)
	}
	x := a.x
	x.a, x.c, x.req = a, c, req
	a.cl = x
	a.fromWire()
	x.body.Reset(c.Reader(), req.BodyFraming(), req.ContentLength, h1.Limits{})
	x.body.SetLimit(a.s.opts.MaxBodyBytes)
	defer b.finish(a)

	if err := a.checkLimits(); err != nil {
		x.fail(err)
		return
	}
	if err := a.choose(); err != nil {
		x.fail(err)
		return
	}
	x.expect = req.Expect100 && a.req.hasBody()
	if err := a.forward(x.send); err != nil {
		x.fail(err)
		return
	}
	b.trackSessions(a, x.setCookies)
	if x.ajpResp != nil {
		x.relayAJP()
		return
	}
	if x.mc.Resp.Status == http.StatusSwitchingProtocols {
		x.tunnel()
		return
	}
	x.relay()
}

// fromWire sets the request view from the request head.
func (a *attempt) fromWire() {
	x := a.x
	req := x.req
	var userAgent, referer string
	for i := range req.Fields {
		switch f := &req.Fields[i]; {
		case f.Class == h1.Cookie:
			x.cookies = append(x.cookies, unsafeString(f.Value))
		case f.Class == h1.Other && len(f.Name) == len("user-agent") && h1.EqualFold(f.Name, "user-agent"):
			userAgent = unsafeString(f.Value)
		case f.Class == h1.Other && len(f.Name) == len("referer") && h1.EqualFold(f.Name, "referer"):
			referer = unsafeString(f.Value)
		}
	}
	a.req = request{
		method: unsafeString(req.Method), target: unsafeString(req.Target), query: unsafeString(req.Query),
		host: unsafeString(req.Host), cookies: x.cookies, remoteAddr: x.c.RemoteAddr(), clientIP: x.c.ClientIP(),
		userAgent: userAgent, referer: referer, tls: x.c.IsTLS(),
	}
	a.req.client, a.req.clientKnown = x.c.ClientAddr()
	switch req.BodyFraming() {
	case h1.Chunked:
		a.req.bodyLen = -1
	case h1.Length:
		a.req.bodyLen = req.ContentLength
	}
}

// fail answers a request that could not be proxied: with the error page,
// or not at all if the client went away.
func (x *exchange) fail(err error) {
	a := x.a
	if x.mc != nil {
		x.mc.Close()
		x.mc = nil
	}
	if a.clientFailed {
		a.err, a.status = context.Canceled, 499 // nginx's "client closed request", for the log only
		x.c.SetClose(false)
		return
	}
	p := a.errorPage(err)
	if p.close || !x.body.Done() {
		x.c.SetClose(!x.body.Done())
	}
	var extra []byte
	extra = append(extra, "Cache-Control: no-store\r\n"...)
	if p.retryAfter > 0 {
		extra = append(extra, "Retry-After: "...)
		extra = strconv.AppendInt(extra, int64(p.retryAfter), 10)
		extra = append(extra, "\r\n"...)
	}
	writeNative(x.c, x.req, p.status, extra, p.body)
	a.status, a.written = p.status, int64(len(p.body))
}
