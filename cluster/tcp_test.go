package cluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// Tests on real loopback TCP: the shared-port transport, authentication
// and hostile connections.

// counting counts the events the security tests look for.
type counting struct {
	NopObserver
	auth, conn atomic.Int64
}

func (c *counting) AuthFailed(string, error) { c.auth.Add(1) }
func (c *counting) ConnFailed(string, error) { c.conn.Add(1) }

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startTCP starts a node on a free loopback port.
func startTCP(t testing.TB, name string, peers []string, tweak func(*Options)) (*Node, *counting) {
	t.Helper()
	obs := &counting{}
	o := Options{Name: name, Addr: "127.0.0.1:0", Peers: peers, Logger: quietLogger(), Observer: obs,
		Gossip: GossipOptions{ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond,
			GossipInterval: 50 * time.Millisecond, RejoinInterval: 200 * time.Millisecond},
		JoinTimeout: 5 * time.Second}
	if tweak != nil {
		tweak(&o)
	}
	n, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, obs
}

func eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// linked waits until a sees b alive, ready and connected.
func linked(t testing.TB, a, b *Node) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		for _, m := range a.memberInfos() {
			if m.Name == b.Name() && m.State == MemberAlive && m.Ready && m.Connected {
				return nil
			}
		}
		return fmt.Errorf("%s does not see %s linked: %+v", a.Name(), b.Name(), a.memberInfos())
	})
}

// replicates checks that a sync write on a is acknowledged by b.
func replicates(t testing.TB, a, b *Node, id string) {
	t.Helper()
	if _, err := a.Create(context.Background(), NewSession{ID: id, Values: map[string][]byte{"k": []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	if r, err := b.Get(id); err != nil || string(r.Values["k"]) != "v" {
		t.Fatalf("%s after a sync write on %s: %+v %v", b.Name(), a.Name(), r, err)
	}
}

func TestTCPClusterReplicates(t *testing.T) {
	a, _ := startTCP(t, "a", nil, nil)
	b, _ := startTCP(t, "b", []string{a.Addr()}, nil)
	linked(t, a, b)
	linked(t, b, a)
	replicates(t, a, b, "s1")
	if _, err := b.Claim(context.Background(), "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Update(context.Background(), Delta{ID: "s1", Set: map[string][]byte{"k": []byte("x")}}); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("old owner writes after the takeover: %v", err)
	}
}

// hostile sends raw bytes to addr and reports whether the node closed the
// connection within timeout, with what it answered.
func hostile(t *testing.T, addr string, send []byte, timeout time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(send); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the node kept the connection open for %v", timeout)
	}
	return got
}

func TestHostileConnectionsAreClosed(t *testing.T) {
	psk := bytes.Repeat([]byte("k"), 32)
	a, obs := startTCP(t, "a", nil, func(o *Options) { o.PSK = psk; o.HandshakeTimeout = 500 * time.Millisecond })
	b, _ := startTCP(t, "b", []string{a.Addr()}, func(o *Options) { o.PSK = psk })
	linked(t, a, b)
	hello := func(mut func(*helloMsg)) []byte {
		h := &helloMsg{cluster: "tether", node: "mallory", addr: "127.0.0.1:1", inc: 7, auth: authPSK,
			nonce: bytes.Repeat([]byte{1}, nonceLen), firstSeq: 1}
		mut(h)
		return encodePayload(h, 0)
	}
	random := make([]byte, 4096)
	_, _ = rand.Read(random)
	tests := []struct {
		name     string
		send     []byte
		rejected string // a reject message expected in the answer
		auth     bool   // counted as an authentication failure
	}{
		{"random bytes after the preamble", append([]byte(Magic), random...), "", false},
		{"oversized frame", append([]byte(Magic), 0xff, 0xff, 0xff, 0xff), "", false},
		{"other protocol version", append([]byte(Magic), frame([]byte{ProtocolVersion + 1, byte(msgHello), 0})...), "", false},
		{"unknown message type", append([]byte(Magic), frame([]byte{ProtocolVersion, 250, 0})...), "", false},
		{"data before the handshake", append([]byte(Magic), frame(encodePayload(&fetchMsg{id: "x"}, 1))...), "", false},
		{"another cluster", append([]byte(Magic), frame(hello(func(h *helloMsg) { h.cluster = "other" }))...), "another cluster", true},
		{"no pre-shared key", append([]byte(Magic), frame(hello(func(h *helloMsg) { h.auth = authNone }))...), "pre-shared key is required", true},
		{"forged proof of the key", append([]byte(Magic), frame(hello(func(*helloMsg) {}),
			encodePayload(&authMsg{mac: bytes.Repeat([]byte{9}, macLen)}, 0))...), "authentication failed", true},
		{"its own name", append([]byte(Magic), frame(hello(func(h *helloMsg) { h.node = "a" }))...), "calls itself", false},
		{"silence after the preamble", []byte(Magic), "", false},
		{"bad preamble", []byte("TTHX garbage"), "", false},
		{"gossip garbage", append([]byte{0x01}, random[:64]...), "", false},
		{"HTTP request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := obs.auth.Load()
			got := hostile(t, a.Addr(), tc.send, 10*time.Second)
			if tc.rejected != "" && !bytes.Contains(got, []byte(tc.rejected)) {
				t.Fatalf("answer %q does not say %q", got, tc.rejected)
			}
			if tc.auth && obs.auth.Load() == before {
				t.Fatal("not reported as an authentication failure")
			}
		})
	}
	// The node is unharmed: it still replicates with its real peer.
	replicates(t, a, b, "after-the-attack")
	replicates(t, b, a, "after-the-attack-2")
}

func TestPreSharedKeyMismatchKeepsNodesApart(t *testing.T) {
	a, obsA := startTCP(t, "a", nil, func(o *Options) { o.PSK = bytes.Repeat([]byte("a"), 32) })
	b, _ := startTCP(t, "b", []string{a.Addr()}, func(o *Options) { o.PSK = bytes.Repeat([]byte("a"), 32) })
	m, obsM := startTCP(t, "m", []string{a.Addr()}, func(o *Options) { o.PSK = bytes.Repeat([]byte("b"), 32) })
	linked(t, a, b)
	eventually(t, 10*time.Second, func() error {
		if obsA.auth.Load() == 0 || obsM.auth.Load() == 0 {
			return fmt.Errorf("auth failures a=%d m=%d", obsA.auth.Load(), obsM.auth.Load())
		}
		return nil
	})
	// The refused node is out of takeovers and acknowledgements, so the
	// others keep working, and it receives nothing.
	replicates(t, a, b, "s")
	if _, err := b.Claim(context.Background(), "s"); err != nil {
		t.Fatalf("a takeover with a refused member around: %v", err)
	}
	if _, err := m.Get("s"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the node with the wrong key got the session: %v", err)
	}
	for _, mi := range a.memberInfos() {
		if mi.Name == "m" && mi.Refused == "" {
			t.Fatalf("a does not report m as refused: %+v", mi)
		}
	}
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t, dir, "ca")
	other, otherKey := newCA(t, dir, "other-ca")
	cfg := func(name string, ca *x509.Certificate, key *ecdsa.PrivateKey, caFile string) func(*Options) {
		cert, keyFile := newLeaf(t, dir, name, ca, key)
		c, err := TLSConfig(cert, keyFile, caFile)
		if err != nil {
			t.Fatal(err)
		}
		return func(o *Options) { o.TLS = c }
	}
	a, obsA := startTCP(t, "a", nil, cfg("a", ca, caKey, filepath.Join(dir, "ca.pem")))
	b, _ := startTCP(t, "b", []string{a.Addr()}, cfg("b", ca, caKey, filepath.Join(dir, "ca.pem")))
	linked(t, a, b)
	replicates(t, a, b, "s")
	// A node whose certificate another CA signed is refused.
	m, _ := startTCP(t, "m", []string{a.Addr()}, cfg("m", other, otherKey, filepath.Join(dir, "ca.pem")))
	eventually(t, 10*time.Second, func() error {
		if obsA.auth.Load() == 0 {
			return errors.New("no authentication failure on a")
		}
		return nil
	})
	if _, err := m.Get("s"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the node with a foreign certificate got the session: %v", err)
	}
}

func newCA(t *testing.T, dir, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func newLeaf(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	cert, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writePEM(t, cert, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return cert, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestGossipKeyKeepsOutsidersOut(t *testing.T) {
	key := bytes.Repeat([]byte("g"), 32)
	a, _ := startTCP(t, "a", nil, func(o *Options) { o.GossipKey = key })
	b, _ := startTCP(t, "b", []string{a.Addr()}, func(o *Options) { o.GossipKey = key })
	linked(t, a, b)
	outsider, _ := startTCP(t, "x", []string{a.Addr()}, func(o *Options) { o.GossipKey = bytes.Repeat([]byte("h"), 32) })
	// The outsider's join fails (it cannot read the answers), so it starts alone.
	eventually(t, 10*time.Second, func() error {
		if !outsider.IsReady() {
			return errors.New("outsider not ready")
		}
		return nil
	})
	for _, n := range []*Node{a, b, outsider} {
		for _, m := range n.Members() {
			if (n == outsider) != (m.Name == "x") {
				t.Fatalf("%s lists %s: the gossip key did not keep the outsider out", n.Name(), m.Name)
			}
		}
	}
	replicates(t, a, b, "s")
}
