package redisstore_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/internal/sharedtest"
	"github.com/tetherlb/tether/session/redisstore"
)

// TestParallelAddsTwoNodes sends 90 parallel adds to one cart, alternately
// to two cart apps sharing one server: with the store's lock every add is
// kept; without it, the read checks refuse the adds that would have
// overwritten another (409), and every add answered 200 is kept all the
// same.
func TestParallelAddsTwoNodes(t *testing.T) { dbproc.Each(t, parallelAddsOn) }

func parallelAddsOn(t *testing.T, f dbproc.Flavor) {
	r := f.Start(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	st, err := redisstore.New(c, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("locker", func(t *testing.T) {
		if ok := sharedtest.ParallelAdds(t, st, 90); ok != 90 {
			t.Fatalf("%d of 90 adds kept with the lock", ok)
		}
	})
	t.Run("read checks only", func(t *testing.T) { sharedtest.ParallelAdds(t, sharedtest.WithoutLocker(st), 90) })
}
