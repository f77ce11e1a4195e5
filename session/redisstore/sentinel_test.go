package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/redisstore"
	"github.com/tetherlb/tether/session/sessiontest"
)

// TestSentinel runs the conformance suite on a Sentinel group with
// replica acknowledgement (WAIT 1), then SIGKILLs the primary under a
// write load: Sentinel promotes a replica, the store follows it, and no
// write acknowledged before the kill, nor after, is lost; every failed
// write was reported as an error.
func TestSentinel(t *testing.T) { dbproc.Each(t, sentinelOn) }

func sentinelOn(t *testing.T, f dbproc.Flavor) {
	g := f.StartSentinelGroup(t)
	url := "redis-sentinel://" + strings.Join(g.SentinelAddrs(), ",") + "/" + g.Master + "?replicas=1&timeout=1s&replica_timeout=500ms"
	u, o, err := redisstore.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewUniversalClient(u)
	t.Cleanup(func() { c.Close() })
	t.Run("conformance", func(t *testing.T) { sessiontest.Run(t, newStore(c, o)) })
	t.Run("primary killed under writes", func(t *testing.T) {
		o.Prefix = "failover:"
		underWrites(t, c, o, func() {
			old := g.Primary.Addr
			g.Primary.Kill()
			proctest.Eventually(t, 60*time.Second, func() error {
				addr, err := g.PrimaryAddr()
				if err == nil && addr == old {
					return errors.New("no failover yet")
				}
				return err
			})
		})
	})
}

// underWrites runs eight writers of read-modify-writes, each on its own
// session, through a Store over c, runs fault once they have made progress,
// and checks that they make progress after it and that every write
// acknowledged (before, during or after the fault) is in the store.
func underWrites(t *testing.T, c redis.UniversalClient, o redisstore.Options, fault func()) {
	st, err := redisstore.New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const writers = 8
	acked := make([]int, writers) // the last value of "n" acknowledged, per session
	for w := range writers {
		now := time.Now()
		if _, err := st.Save(ctx, session.Delta{ID: fmt.Sprint("w", w), Route: "n1", Created: now, LastAccess: now,
			IdleTimeout: time.Hour, Set: map[string][]byte{"n": []byte("0")}}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("w", w)
			for i := 1; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				rec, err := st.Load(ctx, id)
				if err == nil {
					_, err = st.Save(ctx, session.Delta{ID: id, BaseVersion: rec.Version, LastAccess: time.Now(),
						Set: map[string][]byte{"n": []byte(strconv.Itoa(i))}, Read: []session.KeyValue{{Key: "n", Value: rec.Values["n"]}}})
				}
				mu.Lock()
				if err == nil {
					acked[w] = i
				} else {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	progress := func(min int) error {
		mu.Lock()
		defer mu.Unlock()
		for w, n := range acked {
			if n < min {
				return fmt.Errorf("writer %d at %d", w, n)
			}
		}
		return nil
	}
	proctest.Eventually(t, 30*time.Second, func() error { return progress(20) })
	fault()
	mu.Lock()
	base := slicesMax(acked)
	mu.Unlock()
	proctest.Eventually(t, 60*time.Second, func() error { return progress(base + 20) }) // writes go on
	close(stop)
	wg.Wait()
	for w, n := range acked {
		rec, err := st.Load(ctx, fmt.Sprint("w", w))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := strconv.Atoi(string(rec.Values["n"])); got < n {
			t.Errorf("session w%d holds n=%d, but n=%d was acknowledged", w, got, n)
		}
	}
	t.Logf("%d writes failed (answered with an error) during the fault", failed)
}

func slicesMax(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
