package interop

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// TestProxyProtocolFromHAProxy puts Debian's HAProxy in TCP mode in front
// of `tether serve`, sending the PROXY protocol (send-proxy-v2 on one
// frontend, send-proxy, version 1, on another): the client's address, not
// HAProxy's, reaches the member (X-Forwarded-For) and the access log.
func TestProxyProtocolFromHAProxy(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("HAProxy is not installed (Debian haproxy; .ci/run installs it)")
	}
	for _, engine := range []string{"native", "nethttp"} {
		t.Run(engine, func(t *testing.T) {
			member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "xff=%s", r.Header.Get("X-Forwarded-For"))
			}))
			t.Cleanup(member.Close)
			dir := t.TempDir()
			tether, v2, v1 := proctest.FreeAddr(t), proctest.FreeAddr(t), proctest.FreeAddr(t)
			conf := filepath.Join(dir, "tether.yaml")
			os.WriteFile(conf, []byte(fmt.Sprintf(`listen: %s
engine: %s
access_log: stdout
proxy_protocol: { from: [127.0.0.1] }
balancers:
  - { name: app, members: [{ url: %s, route: n1 }] }
`, tether, engine, member.URL)), 0o600)
			serve := proctest.Start(t, "tether serve", "serve", "--config", conf)
			hconf := filepath.Join(dir, "haproxy.cfg")
			os.WriteFile(hconf, []byte(fmt.Sprintf(`defaults
	mode tcp
	timeout connect 2s
	timeout client 30s
	timeout server 30s
frontend v2
	bind %s
	default_backend tether_v2
frontend v1
	bind %s
	default_backend tether_v1
backend tether_v2
	server t %s send-proxy-v2
backend tether_v1
	server t %s send-proxy
`, v2, v1, tether, tether)), 0o600)
			proctest.StartCmd(t, "haproxy", exec.Command(bin, "-db", "-f", hconf))

			for i, front := range []string{v2, v1} {
				client := fmt.Sprintf("127.0.0.%d", 20+i) // a client address HAProxy does not have
				c := clientFrom(client)
				var body string
				proctest.Eventually(t, time.Minute, func() error {
					resp, err := c.Get("http://" + front + "/")
					if err != nil {
						return err
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						return fmt.Errorf("status %d", resp.StatusCode)
					}
					body = string(b)
					return nil
				})
				if body != "xff="+client {
					t.Fatalf("through %s: member got %q, want xff=%s", front, body, client)
				}
				proctest.Eventually(t, 10*time.Second, func() error {
					if !strings.Contains(serve.Output(), `"remote":"`+client+`:`) {
						return fmt.Errorf("access log has no request from %s:\n%s", client, serve.Output())
					}
					return nil
				})
			}
		})
	}
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address local.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// TestSendProxyToNginx puts Debian's nginx, listening with proxy_protocol,
// behind `tether serve` with send_proxy (v1 and v2): nginx reads the
// client's address from the header, and Tether's health checks (LOCAL
// headers) keep it up.
func TestSendProxyToNginx(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed (Debian nginx; .ci/run installs it)")
	}
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			dir := t.TempDir()
			member, tether := proctest.FreeAddr(t), proctest.FreeAddr(t)
			os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
	log_format pp "$proxy_protocol_addr $request_uri";
	access_log %[1]s/access.log pp;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]s proxy_protocol;
		location / { return 200 "client=$proxy_protocol_addr"; }
	}
}
`, dir, member)), 0o600)
			proctest.StartCmd(t, "nginx", exec.Command(bin, "-p", dir, "-e", "stderr", "-c", filepath.Join(dir, "nginx.conf")))
			conf := filepath.Join(dir, "tether.yaml")
			os.WriteFile(conf, []byte(fmt.Sprintf(`listen: %s
balancers:
  - name: app
    send_proxy: %s
    health: { interval: 50ms }
    members: [{ url: http://%s, route: n1 }]
`, tether, version, member)), 0o600)
			serve := proctest.Start(t, "tether serve", "serve", "--config", conf)
			c := clientFrom("127.0.0.31")
			proctest.Eventually(t, time.Minute, func() error {
				resp, err := c.Get("http://" + tether + "/")
				if err != nil {
					return err
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "client=127.0.0.31" {
					return fmt.Errorf("%d %q", resp.StatusCode, b)
				}
				return nil
			})
			// nginx accepted many health checks (LOCAL headers), and Tether
			// never took the member down.
			proctest.Eventually(t, time.Minute, func() error {
				log, _ := os.ReadFile(filepath.Join(dir, "access.log"))
				if n := strings.Count(string(log), " /healthz\n"); n < 10 {
					return fmt.Errorf("%d health checks logged by nginx", n)
				}
				return nil
			})
			if strings.Contains(serve.Output(), "member health changed") {
				t.Fatalf("the member's health changed:\n%s", serve.Output())
			}
		})
	}
}
