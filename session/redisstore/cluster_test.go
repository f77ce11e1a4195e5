package redisstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/session/redisstore"
	"github.com/tetherlb/tether/session/sessiontest"
)

// TestCluster runs the conformance suite on a Cluster (Redis, Valkey) of
// three primaries with a replica each, with replica acknowledgement (WAIT 1),
// then SIGKILLs a primary under a write load spread over the shards: its
// replica takes over, the old primary comes back as its replica, the
// writes go on, and no acknowledged write is lost.
func TestCluster(t *testing.T) { dbproc.Each(t, clusterOn) }

func clusterOn(t *testing.T, f dbproc.Flavor) {
	cl := f.StartCluster(t)
	url := "redis-cluster://" + strings.Join(cl.Addrs(), ",") + "?replicas=1&timeout=1s&replica_timeout=500ms"
	u, o, err := redisstore.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewUniversalClient(u)
	t.Cleanup(func() { c.Close() })
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Fatalf("client %T, want a cluster client", c)
	}
	t.Run("conformance", func(t *testing.T) { sessiontest.Run(t, newStore(c, o)) })
	t.Run("primary killed under writes", func(t *testing.T) {
		o.Prefix = "failover:"
		underWrites(t, c, o, func() {
			victim := cl.Primaries()[0]
			victim.Kill()
			proctest.Eventually(t, 60*time.Second, func() error {
				if n := len(cl.Primaries()); n != 3 {
					return errors.New("no replica promoted yet")
				}
				return nil
			})
			// The shard has no replica left to acknowledge its writes
			// (they fail, with an error) until the old primary is back,
			// as a replica of the new one.
			victim.Restart(t)
			cl.WaitReplicas(t)
		})
	})
}
