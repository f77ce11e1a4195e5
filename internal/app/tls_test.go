package app

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/testpki"
)

// tlsGet sends one HTTP/1.1 request over a new TLS connection made with
// cc and returns the connection's state and the member that answered.
func tlsGet(t *testing.T, addr string, cc *tls.Config) (tls.ConnectionState, string) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	return c.ConnectionState(), resp.Header.Get("X-Member")
}

// TestTLSNativeVersionsAndKeys: a TLS listener is served by the native
// engine; with an ECDSA and an RSA certificate for the same names, TLS
// 1.2 and 1.3 clients get the ECDSA one, a client that can only verify
// RSA gets the RSA one; TLS 1.1 is refused.
func TestTLSNativeVersionsAndKeys(t *testing.T) {
	b := named(t, "b")
	ca := testpki.NewCA(t, "test")
	ecCert, ecKey := ca.Issue(t, "localhost", "127.0.0.1")
	rsaCert, rsaKey := ca.IssueRSA(t, "localhost", "127.0.0.1")
	cfg := parse(t, fmt.Sprintf("listen: 127.0.0.1:0\ntls:\n  cert: %s\n  key: %s\n  certificates: [{cert: %s, key: %s}]\nbalancers:\n  - {name: b, members: [{url: %q, route: n1}]}\n",
		ecCert, ecKey, rsaCert, rsaKey, b.URL))
	s, _ := start(t, cfg)
	if l := s.listeners["127.0.0.1:0"]; l.native == nil {
		t.Fatalf("the TLS listener is served by the %s engine", l.engine)
	}
	addr := s.Addr("127.0.0.1:0")
	rsaSuites := []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
	tests := []struct {
		name     string
		version  uint16
		suites   []uint16
		wantAlgo x509.PublicKeyAlgorithm
	}{
		{"TLS 1.3", tls.VersionTLS13, nil, x509.ECDSA},
		{"TLS 1.2", tls.VersionTLS12, nil, x509.ECDSA},
		{"TLS 1.2, RSA suites only", tls.VersionTLS12, rsaSuites, x509.RSA},
	}
	for _, tt := range tests {
		cc := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tt.version, MaxVersion: tt.version, CipherSuites: tt.suites}
		st, member := tlsGet(t, addr, cc)
		if st.Version != tt.version || st.PeerCertificates[0].PublicKeyAlgorithm != tt.wantAlgo || member != "b" {
			t.Errorf("%s: version %x, %v certificate, member %q; want %x, %v, b", tt.name, st.Version, st.PeerCertificates[0].PublicKeyAlgorithm, member, tt.version, tt.wantAlgo)
		}
	}
	old := &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11}
	if c, err := tls.Dial("tcp", addr, old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 client was accepted")
	}
	// A TLS 1.3 client that verifies RSA-PSS signatures only (Go's client
	// cannot say so): OpenSSL.
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Log("openssl is not installed: the TLS 1.3 RSA client is not checked")
		return
	}
	cmd := exec.Command(openssl, "s_client", "-connect", addr, "-servername", "localhost", "-tls1_3",
		"-sigalgs", "rsa_pss_rsae_sha256", "-CAfile", ca.CertFile, "-verify_return_error")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Peer signature type: RSA-PSS") {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
}

// TestTLSResumptionAndReload: clients resume their sessions by ticket,
// over TLS 1.2 and 1.3; a reload with a new certificate serves it to new
// clients and keeps the tickets already given valid.
func TestTLSResumptionAndReload(t *testing.T) {
	b := named(t, "b")
	ca := testpki.NewCA(t, "test")
	cert1, key1 := ca.Issue(t, "localhost", "first.test")
	cert2, key2 := ca.Issue(t, "localhost", "second.test")
	yaml := "listen: 127.0.0.1:0\ntls: {cert: %s, key: %s}\nbalancers:\n  - {name: b, members: [{url: %q, route: n1}]}\n"
	s, _ := start(t, parse(t, fmt.Sprintf(yaml, cert1, key1, b.URL)))
	addr := s.Addr("127.0.0.1:0")
	caches := map[uint16]tls.ClientSessionCache{}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		caches[v] = tls.NewLRUClientSessionCache(4)
		cc := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: v, MaxVersion: v, ClientSessionCache: caches[v]}
		for i, wantResumed := range []bool{false, true, true} {
			if st, _ := tlsGet(t, addr, cc); st.DidResume != wantResumed {
				t.Fatalf("%s, connection %d: resumed %v", tls.VersionName(v), i, st.DidResume)
			}
		}
	}
	if err := s.Reload(parse(t, fmt.Sprintf(yaml, cert2, key2, b.URL)), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	fresh := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	if st, _ := tlsGet(t, addr, fresh); st.PeerCertificates[0].DNSNames[1] != "second.test" {
		t.Fatalf("after the reload: certificate for %v", st.PeerCertificates[0].DNSNames)
	}
	for v, cache := range caches {
		cc := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: v, MaxVersion: v, ClientSessionCache: cache}
		if st, member := tlsGet(t, addr, cc); !st.DidResume || member != "b" {
			t.Errorf("%s after the reload: resumed %v, member %q", tls.VersionName(v), st.DidResume, member)
		}
	}
}

// TestTLSAfterProxyHeader: on a native TLS listener with proxy_protocol,
// the PROXY header comes before the handshake and names the client the
// member is told of.
func TestTLSAfterProxyHeader(t *testing.T) {
	member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(member.Close)
	ca := testpki.NewCA(t, "test")
	cert, key := ca.Issue(t, "localhost")
	cfg := parse(t, fmt.Sprintf("listen: 127.0.0.1:0\nproxy_protocol: {from: [127.0.0.1]}\ntls: {cert: %s, key: %s}\nbalancers:\n  - {name: b, members: [{url: %q, route: n1}]}\n",
		cert, key, member.URL))
	s, _ := start(t, cfg)
	raw, err := net.Dial("tcp", s.Addr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(raw, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n")
	c := tls.Client(raw, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "203.0.113.7 https" {
		t.Fatalf("the member was told %q, want the PROXY header's client over https", body)
	}
}
