package dbproc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// TLSFiles are the PEM files of a test CA and a server certificate it
// signed for 127.0.0.1.
type TLSFiles struct {
	CA, Cert, Key string
}

// NewTLSFiles writes a fresh CA and a server certificate for 127.0.0.1
// into dir.
func NewTLSFiles(t testing.TB, dir string) TLSFiles {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tether test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	f := TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	for file, block := range map[string]*pem.Block{f.CA: {Type: "CERTIFICATE", Bytes: caDER},
		f.Cert: {Type: "CERTIFICATE", Bytes: der}, f.Key: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// StartRedisTLS starts a redis-server that speaks only TLS, with the
// certificate in f, and extra directives args.
func StartRedisTLS(t testing.TB, f TLSFiles, args ...string) *Redis {
	t.Helper()
	bin := Need(t, "redis-server", "redis-server")
	r := &Redis{Addr: proctest.FreeAddr(t), Dir: t.TempDir(), bin: bin}
	_, port, _ := net.SplitHostPort(r.Addr)
	r.args = append([]string{"--bind", "127.0.0.1", "--port", "0", "--tls-port", port, "--dir", r.Dir,
		"--tls-cert-file", f.Cert, "--tls-key-file", f.Key, "--tls-ca-cert-file", f.CA, "--tls-auth-clients", "no",
		"--save", "", "--appendonly", "no", "--loglevel", "warning"}, args...)
	r.Proc = proctest.StartCmd(t, "redis (TLS) "+r.Addr, exec.Command(r.bin, r.args...))
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	proctest.Eventually(t, 10*time.Second, func() error {
		if r.Exited() {
			t.Fatalf("redis-server %s exited:\n%s", r.Addr, r.Output())
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", r.Addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err != nil {
			return err
		}
		return c.Close()
	})
	return r
}
