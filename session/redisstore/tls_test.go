package redisstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/internal/testpki"
	"github.com/tetherlb/tether/session/redisstore"
	"github.com/tetherlb/tether/session/sessiontest"
)

// TestTLS runs the conformance suite over rediss:// to a server (Redis,
// Valkey) that speaks only TLS and wants a password: with the server's CA
// (tls_ca) and the password it works; without the CA, or with a wrong
// password, Open fails.
func TestTLS(t *testing.T) { dbproc.Each(t, tlsOn) }

func tlsOn(t *testing.T, f dbproc.Flavor) {
	ca := testpki.NewCA(t, string(f))
	const pw = "tls-secret"
	r := f.StartTLS(t, ca, "--requirepass", pw)
	ctx := context.Background()
	url := "rediss://" + r.Addr + "/0?tls_ca=" + ca.CertFile
	if _, err := redisstore.Open(ctx, "rediss://"+r.Addr+"/0", pw, redisstore.Options{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v, want a certificate error", err)
	}
	if _, err := redisstore.Open(ctx, url, "wrong", redisstore.Options{}); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	st, err := redisstore.Open(ctx, url, pw, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, o, err := redisstore.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	sessiontest.Run(t, newStore(st.Client(), o))
}
