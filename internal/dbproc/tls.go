package dbproc

import (
	"crypto/tls"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/internal/testpki"
)

// StartRedisTLS starts a redis-server that speaks only TLS:
// FlavorRedis.StartTLS.
func StartRedisTLS(t testing.TB, ca *testpki.CA, args ...string) *Redis {
	t.Helper()
	return FlavorRedis.StartTLS(t, ca, args...)
}

// StartTLS starts a server of flavor f that speaks only TLS, with a
// certificate for 127.0.0.1 that ca issues, and extra directives args.
func (f Flavor) StartTLS(t testing.TB, ca *testpki.CA, args ...string) *Redis {
	t.Helper()
	cert, key := ca.Issue(t, "127.0.0.1")
	r := &Redis{Addr: proctest.FreeAddr(t), Dir: t.TempDir(), bin: f.need(t, "server", "server")}
	_, port, _ := net.SplitHostPort(r.Addr)
	r.args = append([]string{"--bind", "127.0.0.1", "--port", "0", "--tls-port", port, "--dir", r.Dir,
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca.CertFile, "--tls-auth-clients", "no",
		"--save", "", "--appendonly", "no", "--loglevel", "warning"}, args...)
	name := filepath.Base(r.bin)
	r.Proc = proctest.StartCmd(t, name+" (TLS) "+r.Addr, exec.Command(r.bin, r.args...))
	pool := ca.Pool()
	proctest.Eventually(t, 10*time.Second, func() error {
		if r.Exited() {
			t.Fatalf("%s %s exited:\n%s", name, r.Addr, r.Output())
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", r.Addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err != nil {
			return err
		}
		return c.Close()
	})
	return r
}
