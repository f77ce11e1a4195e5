package app

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/internal/testpki"
)

// TestReadinessOnShutdown: the probes answer on the proxy listener for
// any host, both engines, without reaching a member; from SIGTERM on,
// readiness is 503 while requests are still proxied for shutdown_delay,
// which a second signal cuts short.
func TestReadinessOnShutdown(t *testing.T) {
	for _, engine := range []string{"native", "nethttp"} {
		t.Run(engine, func(t *testing.T) {
			b := named(t, "b")
			cfg := parse(t, fmt.Sprintf(`
listen: 127.0.0.1:0
engine: %s
shutdown_delay: 1h
probes: {ready_path: /-/ready, live_path: /-/live}
balancers:
  - {name: b, hosts: [shop.test], members: [{url: %q, route: n1}]}
`, engine, b.URL))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started, done, hurry := make(chan *Server, 1), make(chan error, 1), make(chan struct{})
			go func() {
				done <- Serve(ctx, cfg, ServeOptions{Logger: quiet(), Hurry: hurry, Started: func(s *Server) { started <- s }})
			}()
			s := <-started
			base := "http://" + s.Addr("127.0.0.1:0")
			status := func(path, host string) (int, string) {
				t.Helper()
				req, _ := http.NewRequest("GET", base+path, nil)
				req.Host = host
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode, resp.Header.Get("X-Member")
			}
			for _, host := range []string{"shop.test", "unknown.test"} {
				if code, m := status("/-/ready", host); code != 200 || m != "" {
					t.Fatalf("ready for %s: %d from %q", host, code, m)
				}
			}
			if code, _ := status("/-/live", "x"); code != 200 {
				t.Fatalf("live: %d", code)
			}
			cancel() // SIGTERM
			proctest.Eventually(t, 10*time.Second, func() error {
				if code, _ := status("/-/ready", "shop.test"); code != http.StatusServiceUnavailable {
					return fmt.Errorf("ready: %d", code)
				}
				return nil
			})
			if code, m := status("/cart", "shop.test"); code != 200 || m != "b" {
				t.Fatalf("during the shutdown delay: %d from %q, want still served", code, m)
			}
			if code, _ := status("/-/live", "shop.test"); code != 200 {
				t.Fatalf("live while shutting down: %d", code)
			}
			close(hurry) // a second SIGTERM
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the shutdown delay was not cut short")
			}
		})
	}
}

// TestRedirectHTTPS: a redirect listener beside a TLS one sends every
// request to https, in both engines, and answers the probes itself.
func TestRedirectHTTPS(t *testing.T) {
	for _, engine := range []string{"native", "nethttp"} {
		t.Run(engine, func(t *testing.T) {
			b := named(t, "b")
			cert, key := testpki.NewCA(t, "test").Issue(t, "localhost")
			redirect := proctest.FreeAddr(t)
			cfg := parse(t, fmt.Sprintf(`
listen: 127.0.0.1:0
engine: %s
tls: {cert: %s, key: %s}
redirect_https: {listen: %s, port: 8443}
probes: {ready_path: /-/ready}
balancers:
  - {name: b, members: [{url: %q, route: n1}]}
`, map[string]string{"native": "auto", "nethttp": "nethttp"}[engine], cert, key, redirect, b.URL))
			start(t, cfg)
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for _, tc := range []struct{ method, want string }{{"GET", "301"}, {"POST", "308"}} {
				req, _ := http.NewRequest(tc.method, "http://"+redirect+"/cart?item=1", nil)
				req.Host = "shop.test"
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got := fmt.Sprint(resp.StatusCode); got != tc.want || resp.Header.Get("Location") != "https://shop.test:8443/cart?item=1" {
					t.Errorf("%s: %s to %q", tc.method, got, resp.Header.Get("Location"))
				}
			}
			if code, _ := get(t, c, "http://"+redirect+"/-/ready"); code != 200 {
				t.Fatalf("ready on the redirect listener: %d", code)
			}
		})
	}
}
