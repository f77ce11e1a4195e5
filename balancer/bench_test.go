package balancer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// benchBalancer is a balancer over three members that are never dialed.
func benchBalancer(b testing.TB, method Method, transport http.RoundTripper) *Balancer {
	opts := fastOptions()
	opts.Method = method
	opts.Transport = transport
	bal, err := New(opts, []MemberConfig{
		cfg("n1", "http://127.0.0.1:1", 1, Active), cfg("n2", "http://127.0.0.1:2", 1, Active), cfg("n3", "http://127.0.0.1:3", 1, Active),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bal.Close)
	return bal
}

func routingRequest(cookie string) request {
	r := request{method: "GET", target: "/shop/cart?item=42", query: "item=42"}
	if cookie != "" {
		r.cookies = []string{cookie}
	}
	return r
}

func httpRequest(cookie string) *http.Request {
	r := httptest.NewRequest("GET", "/shop/cart?item=42", nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return r
}

const benchCookie = "_ga=GA1.2.3; theme=dark; JSESSIONID=8F3A2B9C1D4E5F60718293A4B5C6D7E8.n2; lang=en"

// routeOnce runs the routing path of one request: extraction, lookup, pick.
func routeOnce(bal *Balancer, a *attempt, r request) *Member {
	a.begin(bal, bal.cur.Load())
	a.req = r
	if err := a.choose(); err != nil {
		panic(err)
	}
	m := a.member
	a.reset()
	return m
}

func TestRoutingDoesNotAllocate(t *testing.T) {
	for _, method := range []Method{ByRequests, ByBusyness, ByTraffic, P2C} {
		bal := benchBalancer(t, method, nil)
		a := new(attempt)
		for name, r := range map[string]request{
			"sticky": routingRequest(benchCookie), "new": routingRequest(""),
			"path":     {method: "GET", target: "/app;jsessionid=ABC.n3?x=1", query: "x=1"},
			"failover": routingRequest("JSESSIONID=ABC.n9"),
		} {
			routeOnce(bal, a, r) // warm the candidate buffer
			if n := testing.AllocsPerRun(200, func() { routeOnce(bal, a, r) }); n != 0 {
				t.Errorf("%s, %s: %v allocations per request", method, name, n)
			}
		}
	}
}

func BenchmarkRouting(b *testing.B) {
	for _, tc := range []struct {
		name, cookie string
		method       Method
	}{
		{"sticky", benchCookie, ByRequests},
		{"new/byrequests", "", ByRequests},
		{"new/bybusyness", "", ByBusyness},
		{"new/bytraffic", "", ByTraffic},
		{"new/p2c", "", P2C},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bal := benchBalancer(b, tc.method, nil)
			a := new(attempt)
			r := routingRequest(tc.cookie)
			b.ReportAllocs()
			for b.Loop() {
				routeOnce(bal, a, r)
			}
		})
	}
}

// cannedTransport answers every request at once, so that the benchmark
// measures the balancer and ReverseProxy, not a network.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Request: r, ContentLength: 2,
		Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(strings.NewReader("ok")),
	}, nil
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkServeHTTP is one whole proxied request through the balancer
// with a transport that answers at once.
func BenchmarkServeHTTP(b *testing.B) {
	for _, tc := range []struct{ name, cookie string }{{"sticky", benchCookie}, {"new", ""}} {
		b.Run(tc.name, func(b *testing.B) {
			bal := benchBalancer(b, ByRequests, cannedTransport{})
			r := httpRequest(tc.cookie)
			r.RemoteAddr = "127.0.0.1:5555"
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				bal.ServeHTTP(w, r)
			}
		})
	}
}
