// Command protoproxy is an experiment, not a product: two minimal sticky
// HTTP/1.1 proxies in Go that bench/compare measures next to Tether to
// find out what the net/http-based design costs and what a design without
// it could reach. It routes like Tether (JSESSIONID=<id>.<route> → member
// <route>; no cookie → round robin) and adds the same forwarding headers,
// but has no health checks, failover, retries, timeouts, limits or
// management, so it does less than Tether and sets an upper bound.
//
//	protoproxy --engine raw     --listen ADDR --members n1=ADDR,n2=ADDR,n3=ADDR
//	protoproxy --engine nethttp --listen ADDR --members ...
//
// Engines:
//   - nethttp: net/http.Server + httputil.ReverseProxy + http.Transport,
//     the stack Tether's balancer is built on, with nothing of Tether's.
//   - raw: one goroutine per client connection that parses the request
//     head in place, writes it to a pooled member connection and copies
//     the response back, framing bodies by Content-Length or chunked
//     encoding: no per-request goroutines, channels, contexts, timers or
//     header maps.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"sync/atomic"

	"github.com/tetherlb/tether/route"
)

func main() {
	engine := flag.String("engine", "raw", "raw or nethttp")
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	list := flag.String("members", "", "route=host:port,... (required)")
	flag.Parse()
	ms, err := parseMembers(*list)
	if err != nil || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "protoproxy:", err)
		flag.Usage()
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	p := &picker{members: ms}
	switch *engine {
	case "raw":
		err = serveRaw(ln, p)
	case "nethttp":
		err = serveNetHTTP(ln, p)
	default:
		err = fmt.Errorf("unknown engine %q", *engine)
	}
	log.Fatal(err)
}

// member is one backend.
type member struct {
	route, addr string
	pool        connPool // used by the raw engine
}

// picker chooses members: by the route of the session cookie, else round robin.
type picker struct {
	members []*member
	next    atomic.Uint64
}

var errMembers = errors.New("--members wants route=host:port,...")

func parseMembers(s string) ([]*member, error) {
	var ms []*member
	for _, kv := range strings.Split(s, ",") {
		rt, addr, ok := strings.Cut(kv, "=")
		if !ok || !route.Valid(rt) || addr == "" {
			return nil, fmt.Errorf("%w: bad %q", errMembers, kv)
		}
		ms = append(ms, &member{route: rt, addr: addr})
	}
	return ms, nil
}

// pick returns the member named by the JSESSIONID cookie's route in any of
// the Cookie header values, else the next one round robin.
func (p *picker) pick(cookies ...string) *member {
	for _, h := range cookies {
		if m := p.byCookie(h); m != nil {
			return m
		}
	}
	return p.roundRobin()
}

// byCookie returns the member named by the JSESSIONID in one Cookie
// header value, or nil.
func (p *picker) byCookie(h string) *member {
	v, _, ok := route.Cookie(h, "JSESSIONID")
	if !ok {
		return nil
	}
	_, rt, ok := route.Split(v, route.DefaultSeparator)
	if !ok {
		return nil
	}
	for _, m := range p.members {
		if m.route == rt {
			return m
		}
	}
	return nil
}

func (p *picker) roundRobin() *member {
	return p.members[(p.next.Add(1)-1)%uint64(len(p.members))]
}
