package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/redisstore"
)

// header is a well-formed session header, to break one field at a time.
func header() map[string]any {
	return map[string]any{"m:v": "3", "m:r": "n1", "m:c": "1735689600000000", "m:a": "1735689600000000",
		"m:i": "0", "m:d": "0", "k:cart": `{"items":[]}`, "w:cart": "2"}
}

// TestHostileRecords plants keys no Store wrote under a session's name:
// every one is refused with ErrCorrupt, never a panic, and Delete clears it.
func TestHostileRecords(t *testing.T) { dbproc.Each(t, hostileRecordsOn) }

func hostileRecordsOn(t *testing.T, f dbproc.Flavor) {
	r := f.Start(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	st, err := redisstore.New(c, redisstore.Options{Prefix: "h:", MaxRecordBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	without := func(f string) func(string) error {
		return func(k string) error {
			h := header()
			delete(h, f)
			return c.HSet(ctx, k, h).Err()
		}
	}
	with := func(f, v string) func(string) error {
		return func(k string) error {
			h := header()
			h[f] = v
			return c.HSet(ctx, k, h).Err()
		}
	}
	for _, tc := range []struct {
		name   string
		plant  func(key string) error
		header bool // the session header is broken: Save refuses too
	}{
		{"a string", func(k string) error { return c.Set(ctx, k, "hello", 0).Err() }, true},
		{"a list", func(k string) error { return c.RPush(ctx, k, "a", "b").Err() }, true},
		{"truncated: no version", without("m:v"), true},
		{"truncated: no route", without("m:r"), true},
		{"truncated: no last access", without("m:a"), true},
		{"version not a number", with("m:v", "three"), true},
		{"version zero", with("m:v", "0"), true},
		{"negative idle timeout", with("m:i", "-5"), true},
		{"time out of range", with("m:a", "99999999999999999999999"), true},
		{"unknown field", with("x", "1"), false},
		{"huge", with("k:big", strings.Repeat("x", 5000)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			if err := tc.plant("h:{" + id + "}"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Load(ctx, id); !errors.Is(err, redisstore.ErrCorrupt) {
				t.Errorf("Load: %v, want ErrCorrupt", err)
			}
			// A broken header stops a Save; what Save does not read (other
			// fields, the size) it leaves for Load to refuse.
			_, err := st.Save(ctx, session.Delta{ID: id, BaseVersion: 3, Set: map[string][]byte{"a": []byte("1")}, LastAccess: time.Now()})
			if tc.header && !errors.Is(err, redisstore.ErrCorrupt) {
				t.Errorf("Save: %v, want ErrCorrupt", err)
			}
			if _, err := st.Load(ctx, id); !errors.Is(err, redisstore.ErrCorrupt) {
				t.Errorf("Load after Save: %v, want ErrCorrupt", err)
			}
			if _, err := st.Save(ctx, session.Delta{ID: id, Route: "n1", LastAccess: time.Now()}); !errors.Is(err, session.ErrExists) {
				t.Errorf("create over it: %v, want ErrExists (the Manager draws another id)", err)
			}
			if err := st.Delete(ctx, id); err != nil {
				t.Errorf("Delete: %v", err)
			}
			if n, _ := c.Exists(ctx, "h:{"+id+"}").Result(); n != 0 {
				t.Errorf("still there after Delete")
			}
		})
	}
}

// TestTTL shows that the server itself drops sessions at their idle
// timeout or deadline, by key TTL, without keyspace notifications or
// CONFIG.
func TestTTL(t *testing.T) { dbproc.Each(t, ttlOn) }

func ttlOn(t *testing.T, f dbproc.Flavor) {
	r := f.Start(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	st, err := redisstore.New(c, redisstore.Options{Prefix: "ttl:"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tc := range []struct {
		id       string
		idle     time.Duration
		deadline time.Duration
		max      time.Duration // the TTL Redis must show at most; 0: none
	}{
		{"idle", 400 * time.Millisecond, 0, 400 * time.Millisecond},
		{"deadline", time.Hour, 400 * time.Millisecond, 400 * time.Millisecond},
		{"none", 0, 0, 0},
	} {
		d := session.Delta{ID: tc.id, Route: "n1", Created: now, LastAccess: now, IdleTimeout: tc.idle,
			Set: map[string][]byte{"a": []byte("1")}}
		if tc.deadline > 0 {
			d.Deadline = now.Add(tc.deadline)
		}
		if _, err := st.Save(ctx, d); err != nil {
			t.Fatal(err)
		}
		ttl, err := c.PTTL(ctx, "ttl:{"+tc.id+"}").Result()
		if err != nil {
			t.Fatal(err)
		}
		if tc.max == 0 && ttl != -1*time.Nanosecond && ttl != -1 {
			t.Errorf("%s: TTL %v, want none", tc.id, ttl)
		}
		if tc.max > 0 && (ttl <= 0 || ttl > tc.max) {
			t.Errorf("%s: TTL %v, want in (0, %v]", tc.id, ttl, tc.max)
		}
	}
	for _, id := range []string{"idle", "deadline"} {
		proctest.Eventually(t, 10*time.Second, func() error {
			if n, err := c.Exists(ctx, "ttl:{"+id+"}").Result(); err != nil || n != 0 {
				return errors.New(id + " still in the server")
			}
			return nil
		})
	}
	if _, err := st.Load(ctx, "none"); err != nil {
		t.Errorf("session without timeouts: %v", err)
	}
}
