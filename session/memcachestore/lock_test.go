package memcachestore_test

import (
	"testing"

	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/internal/sharedtest"
	"github.com/tetherlb/tether/session/memcachestore"
)

// TestParallelAddsTwoNodes sends 90 parallel adds to one cart, alternately
// to two cart apps sharing a pair of memcached servers: with the store's
// lock every add is kept; without it, the compare-and-swap and the read
// checks refuse what would have been lost.
func TestParallelAddsTwoNodes(t *testing.T) {
	st, err := memcachestore.New([]string{dbproc.StartMemcached(t).Addr, dbproc.StartMemcached(t).Addr}, memcachestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	t.Run("locker", func(t *testing.T) {
		if ok := sharedtest.ParallelAdds(t, st, 90); ok != 90 {
			t.Fatalf("%d of 90 adds kept with the lock", ok)
		}
	})
	t.Run("read checks only", func(t *testing.T) { sharedtest.ParallelAdds(t, sharedtest.WithoutLocker(st), 90) })
}
