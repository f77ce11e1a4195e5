package redisstore_test

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/session/redisstore"
	"github.com/tetherlb/tether/session/sessiontest"
)

// newStore returns a sessiontest factory over client c: every store gets
// its own key prefix, so that subtests share the server without seeing
// each other's sessions.
func newStore(c redis.UniversalClient, o redisstore.Options) func(*testing.T, sessiontest.Config) sessiontest.Instance {
	return func(t *testing.T, cfg sessiontest.Config) sessiontest.Instance {
		o := o
		o.Prefix = "test:" + strings.ReplaceAll(t.Name(), "/", ":") + ":"
		o.Now = cfg.Now
		st, err := redisstore.New(c, o)
		if err != nil {
			t.Fatal(err)
		}
		return sessiontest.Instance{Store: st}
	}
}

// TestConformanceStandalone runs the conformance suite on a standalone
// server, Redis and Valkey (as every test here that starts a server: one
// subtest per dbproc.Flavor).
func TestConformanceStandalone(t *testing.T) {
	dbproc.Each(t, func(t *testing.T, f dbproc.Flavor) {
		r := f.Start(t)
		c := redis.NewClient(&redis.Options{Addr: r.Addr})
		t.Cleanup(func() { c.Close() })
		sessiontest.Run(t, newStore(c, redisstore.Options{}))
	})
}
