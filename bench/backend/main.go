// Command backend is the member that bench/compare puts behind every
// balancer: a tiny HTTP/1.1 server, cheap enough that the balancer in
// front of it is what a benchmark measures.
//
//	backend --listen 127.0.0.1:9001 --route n1
//
// GET /big answers 64 KiB; every other path answers a few bytes naming the
// route ("node n1"). A request without a JSESSIONID cookie gets a new
// session: Set-Cookie: JSESSIONID=<32 hex digits>.<route>; Path=/.
// Connections are kept alive and pipelined requests are answered in order.
//
// With --nethttp it answers the same through net/http.Server instead, to
// measure what the standard library's server costs.
//
// It speaks just enough HTTP/1.1 for load generators and proxies: request
// bodies with Content-Length are read and discarded, chunked request
// bodies are refused (501), and a request line or header block over 16 KiB
// is refused (431).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "address to listen on")
	rt := flag.String("route", "n1", "route of this member, the suffix of the session ids it creates")
	stdlib := flag.Bool("nethttp", false, "serve through net/http.Server instead (slower; to measure net/http)")
	flag.Parse()
	if *rt == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "backend %s listening on %s\n", *rt, ln.Addr())
	s := newServer(*rt)
	if *stdlib {
		log.Fatal(s.serveNetHTTP(ln))
	}
	log.Fatal(s.serve(ln))
}
