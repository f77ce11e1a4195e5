package main

import (
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"
)

// serveNetHTTP proxies with the standard library's server, reverse proxy
// and transport, configured as Tether configures them (pooled copy
// buffers, 256 idle connections per member), adding the same forwarding
// headers.
func serveNetHTTP(ln net.Listener, p *picker) error {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			m := p.pick(pr.In.Header["Cookie"]...)
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", m.addr
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			ip, _, _ := net.SplitHostPort(pr.In.RemoteAddr)
			pr.Out.Header["Forwarded"] = []string{"for=" + ip + ";host=" + strconv.Quote(pr.In.Host) + ";proto=http"}
		},
		BufferPool: bufferPool{&sync.Pool{New: func() any { return new([32 << 10]byte) }}},
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	return srv.Serve(ln)
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers (without one it
// allocates a buffer per request).
type bufferPool struct{ p *sync.Pool }

func (bp bufferPool) Get() []byte { return bp.p.Get().(*[32 << 10]byte)[:] }

func (bp bufferPool) Put(b []byte) {
	if cap(b) >= 32<<10 {
		bp.p.Put((*[32 << 10]byte)(b[:32<<10]))
	}
}
