package memcachestore_test

import (
	"strings"
	"testing"

	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/session/memcachestore"
	"github.com/tetherlb/tether/session/sessiontest"
)

// TestConformance runs the suite on a pair of memcached servers: each
// store gets its own prefix, and its sessions spread over both.
func TestConformance(t *testing.T) {
	servers := []string{dbproc.StartMemcached(t).Addr, dbproc.StartMemcached(t).Addr}
	sessiontest.Run(t, func(t *testing.T, cfg sessiontest.Config) sessiontest.Instance {
		st, err := memcachestore.New(servers, memcachestore.Options{
			Prefix: "test:" + strings.ReplaceAll(t.Name(), "/", ":") + ":", Now: cfg.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return sessiontest.Instance{Store: st}
	})
}
