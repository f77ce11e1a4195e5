package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/tetherlb/tether/internal/testpki"
)

// TestHostsWithSNI: two hosts, two certificates, two balancers, one TLS
// listener: each client gets its host's certificate and balancer, over
// HTTP/2; a host no balancer names gets 421 with the default certificate.
func TestHostsWithSNI(t *testing.T) {
	shop, blog := named(t, "shop"), named(t, "blog")
	ca := testpki.NewCA(t, "test")
	defCert, defKey := ca.Issue(t, "default.test")
	shopCert, shopKey := ca.Issue(t, "shop.example.test")
	blogCert, blogKey := ca.Issue(t, "*.blog.test")
	cfg := parse(t, fmt.Sprintf(`
listen: 127.0.0.1:0
tls:
  cert: %s
  key: %s
  certificates:
    - {cert: %s, key: %s}
    - {cert: %s, key: %s}
balancers:
  - name: shop
    hosts: [shop.example.test]
    members: [{url: %q, route: s1}]
  - name: blog
    hosts: ["*.blog.test"]
    members: [{url: %q, route: b1}]
`, defCert, defKey, shopCert, shopKey, blogCert, blogKey, shop.URL, blog.URL))
	s, _ := start(t, cfg)
	addr := s.Addr("127.0.0.1:0")
	client := func(insecure bool) *http.Client {
		d := &net.Dialer{}
		return &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: ca.Pool(), InsecureSkipVerify: insecure},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr) // every name resolves to the listener
			},
		}}
	}
	tests := []struct {
		host, member, certName string
		status                 int
	}{
		{"shop.example.test", "shop", "shop.example.test", 200},
		{"www.blog.test", "blog", "*.blog.test", 200},
		{"other.test", "", "default.test", http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		resp, err := client(tt.status != 200).Get("https://" + tt.host + "/")
		if err != nil {
			t.Fatalf("%s: %v", tt.host, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		leaf := resp.TLS.PeerCertificates[0]
		if resp.StatusCode != tt.status || resp.Header.Get("X-Member") != tt.member || resp.ProtoMajor != 2 || leaf.DNSNames[0] != tt.certName {
			t.Errorf("%s: %d from %q over %s with certificate %v; want %d from %q over HTTP/2 with %s",
				tt.host, resp.StatusCode, resp.Header.Get("X-Member"), resp.Proto, leaf.DNSNames, tt.status, tt.member, tt.certName)
		}
	}
	// curl, another TLS client, verifying against the CA.
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Log("curl is not installed: checked with Go's client only")
		return
	}
	_, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(curl, "-sS", "--http2", "--cacert", ca.CertFile, "--resolve", "shop.example.test:"+port+":127.0.0.1",
		"-o", "/dev/null", "-w", "%{http_version} %{http_code}", "https://shop.example.test:"+port+"/").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "2 200" {
		t.Fatalf("curl: %v: %s", err, out)
	}
}

// TestHostsOnPlaintextListener: both engines route by Host; a balancer
// without hosts serves every other host.
func TestHostsOnPlaintextListener(t *testing.T) {
	for _, engine := range []string{"native", "nethttp"} {
		t.Run(engine, func(t *testing.T) {
			shop, other := named(t, "shop"), named(t, "other")
			_, base := start(t, parse(t, fmt.Sprintf(`
listen: 127.0.0.1:0
engine: %s
balancers:
  - {name: shop, hosts: [shop.example.test, "*.shop.example.test"], members: [{url: %q, route: s1}]}
  - {name: other, members: [{url: %q, route: o1}]}
`, engine, shop.URL, other.URL)))
			for host, want := range map[string]string{"shop.example.test": "shop", "EU.Shop.Example.Test": "shop", "a.b.shop.example.test": "other", "127.0.0.1": "other"} {
				req, _ := http.NewRequest("GET", base+"/x", nil)
				req.Host = host
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got := resp.Header.Get("X-Member"); got != want {
					t.Errorf("Host %s: served by %q, want %q", host, got, want)
				}
			}
		})
	}
}
