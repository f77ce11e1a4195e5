package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/internal/proctest"
)

// clientFrom returns a client whose connections come from the loopback
// address src (any of 127.0.0.0/8 is local on Linux).
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// scrapeAs sends GET url from src with token (none if ""), and returns the
// status and body.
func scrapeAs(t *testing.T, src, method, url, token string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := clientFrom(src).Do(req)
	if err != nil {
		t.Fatalf("%s %s from %s: %v", method, url, src, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestMetricsListenerAuth runs Serve with metrics.listen, without a
// manager, and scrapes it from several loopback sources.
func TestMetricsListenerAuth(t *testing.T) {
	const token = "metrics-token-0123456789abcdef"
	tokenFile := filepath.Join(t.TempDir(), "metrics.token")
	must(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	backend := named(t, "n1")
	type try struct {
		src, method, path, token string
		want                     int
	}
	tests := []struct {
		name    string
		metrics string // the metrics section's other keys
		env     string // TETHER_METRICS_TOKEN
		tries   []try
	}{
		{"loopback without token: open", "", "", []try{
			{"127.0.0.1", "GET", "/metrics", "", 200},
			{"127.0.0.3", "HEAD", "/metrics", "", 200},
			{"127.0.0.1", "GET", "/", "", 404},
			{"127.0.0.1", "GET", "/api/v1/balancers", "", 404},
			{"127.0.0.1", "POST", "/metrics", "", 405},
		}},
		{"token from the environment", "", token, []try{
			{"127.0.0.1", "GET", "/metrics", "", 401},
			{"127.0.0.1", "GET", "/metrics", "wrong", 401},
			{"127.0.0.1", "GET", "/metrics", token, 200},
		}},
		{"token file and an allowed address", "token_file: " + tokenFile + ", allow: [127.0.0.2]", "ignored-when-a-file-is-given", []try{
			{"127.0.0.2", "GET", "/metrics", "", 200},
			{"127.0.0.3", "GET", "/metrics", "", 401},
			{"127.0.0.3", "GET", "/metrics", "ignored-when-a-file-is-given", 401},
			{"127.0.0.3", "GET", "/metrics", token, 200},
		}},
		{"token and an allowed network", "allow: ['127.0.0.0/30']", token, []try{
			{"127.0.0.3", "GET", "/metrics", "", 200},
			{"127.0.0.4", "GET", "/metrics", "", 401},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listen, addr := proctest.FreeAddr(t), proctest.FreeAddr(t)
			section := "listen: " + addr
			if tt.metrics != "" {
				section += ", " + tt.metrics
			}
			cfg := parse(t, fmt.Sprintf("listen: %s\nmetrics: {%s}\nbalancers:\n  - {name: b, members: [{url: %s, route: n1}]}\n",
				listen, section, backend.URL))
			serveInTest(t, cfg, ServeOptions{Getenv: func(k string) string {
				if k == MetricsTokenEnv {
					return tt.env
				}
				return ""
			}})
			// A request through the balancer, counted in the metrics.
			if code, _ := get(t, http.DefaultClient, "http://"+listen+"/"); code != 200 {
				t.Fatalf("request through the balancer: %d", code)
			}
			for _, x := range tt.tries {
				code, body, h := scrapeAs(t, x.src, x.method, "http://"+addr+x.path, x.token)
				if code != x.want {
					t.Errorf("%s %s from %s with token %q: %d, want %d", x.method, x.path, x.src, x.token, code, x.want)
				}
				if code == 200 && x.method == "GET" && !strings.Contains(body, `tether_requests_total{balancer="b",code="2xx",member="n1",outcome="new"} 1`) {
					t.Errorf("the metrics do not count the request:\n%.2000s", body)
				}
				if code == 401 && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without WWW-Authenticate: Bearer")
				}
				if code != 200 && strings.Contains(body, "tether_") {
					t.Errorf("a refused request got metrics: %.200s", body)
				}
			}
		})
	}
}

// TestMetricsAccessRules checks the rules for an address that is not
// loopback, which a test may not listen on: without a token or allow the
// listener is refused; with allow only, others are forbidden.
func TestMetricsAccessRules(t *testing.T) {
	none := func(string) string { return "" }
	var tel telemetry
	err := tel.access(config.Metrics{Listen: "0.0.0.0:9090"}, none)
	if err == nil || !strings.Contains(err.Error(), MetricsTokenEnv) || !strings.Contains(err.Error(), "metrics.allow") {
		t.Fatalf("a public metrics listener without token or allow: %v", err)
	}
	tel = telemetry{handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "tether_x 1\n") })}
	if err := tel.access(config.Metrics{Listen: "0.0.0.0:9090", Allow: []string{"10.0.0.0/8", "2001:db8::/32"}}, none); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		remote string
		want   int
	}{
		{"10.1.2.3:5555", 200},
		{"[::ffff:10.1.2.3]:5555", 200},
		{"[2001:db8::7]:5555", 200},
		{"192.168.1.1:5555", 403},
		{"127.0.0.1:5555", 403}, // loopback is not implied on a public listener
		{"garbage", 403},
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.RemoteAddr = x.remote
		w := httptest.NewRecorder()
		tel.ServeHTTP(w, r)
		if w.Code != x.want {
			t.Errorf("from %s: %d, want %d", x.remote, w.Code, x.want)
		}
	}
}

// TestServeRefusesAPublicMetricsListenerWithoutAuth: Serve stops with a
// configuration error before listening anywhere.
func TestServeRefusesAPublicMetricsListenerWithoutAuth(t *testing.T) {
	cfg := parse(t, "listen: 127.0.0.1:0\nmetrics: {listen: '0.0.0.0:0'}\nbalancers:\n  - {name: b, members: [{url: http://127.0.0.1:9, route: n1}]}\n")
	err := Serve(context.Background(), cfg, ServeOptions{Logger: quiet(), Getenv: func(string) string { return "" }})
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("Serve: %v", err)
	}
}
