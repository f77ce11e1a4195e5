package memcachestore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/memcachestore"
)

// TestHostileItems plants items no Store wrote under a session's name:
// every one is refused with ErrCorrupt, never a panic, a session cannot be
// created over it, and Delete clears it.
func TestHostileItems(t *testing.T) {
	addr := dbproc.StartMemcached(t).Addr
	st, err := memcachestore.New([]string{addr}, memcachestore.Options{Prefix: "h:", MaxRecordBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := memcache.New(addr)
	ctx := context.Background()
	good := func() []byte { // a valid record, to cut short
		st2, _ := memcachestore.New([]string{addr}, memcachestore.Options{Prefix: "good:"})
		now := time.Now()
		if _, err := st2.Save(ctx, session.Delta{ID: "g", Route: "n1", Created: now, LastAccess: now,
			Set: map[string][]byte{"cart": []byte(`{"items":["a"]}`)}}); err != nil {
			t.Fatal(err)
		}
		it, err := c.Get("good:g")
		if err != nil {
			t.Fatal(err)
		}
		return it.Value
	}()
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"text", []byte("hello")},
		{"empty", nil},
		{"truncated", good[:len(good)-3]},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
		{"magic only", []byte("tms1")},
		{"huge", append([]byte("tms1"), strings.Repeat("x", 5000)...)},
		{"huge count", append([]byte("tms1\x01\x00\x00\x00\x00\x00"), 0xff, 0xff, 0xff, 0xff, 0x0f)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			if err := c.Set(&memcache.Item{Key: "h:" + id, Value: tc.value}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Load(ctx, id); !errors.Is(err, memcachestore.ErrCorrupt) {
				t.Errorf("Load: %v, want ErrCorrupt", err)
			}
			if _, err := st.Save(ctx, session.Delta{ID: id, BaseVersion: 1, Set: map[string][]byte{"a": []byte("1")}, LastAccess: time.Now()}); !errors.Is(err, memcachestore.ErrCorrupt) {
				t.Errorf("Save: %v, want ErrCorrupt", err)
			}
			if _, err := st.Save(ctx, session.Delta{ID: id, Route: "n1", LastAccess: time.Now()}); !errors.Is(err, session.ErrExists) {
				t.Errorf("create over it: %v, want ErrExists", err)
			}
			if err := st.Delete(ctx, id); err != nil {
				t.Errorf("Delete: %v", err)
			}
			if _, err := c.Get("h:" + id); !errors.Is(err, memcache.ErrCacheMiss) {
				t.Errorf("still there after Delete: %v", err)
			}
		})
	}
}

// TestExpiry shows memcached itself dropping a session at its idle
// timeout, by item expiry.
func TestExpiry(t *testing.T) {
	addr := dbproc.StartMemcached(t).Addr
	st, err := memcachestore.New([]string{addr}, memcachestore.Options{Prefix: "x:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	now := time.Now()
	if _, err := st.Save(ctx, session.Delta{ID: "idle", Route: "n1", Created: now, LastAccess: now, IdleTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	c := memcache.New(addr)
	proctest.Eventually(t, 10*time.Second, func() error {
		if _, err := c.Get("x:idle"); !errors.Is(err, memcache.ErrCacheMiss) {
			return fmt.Errorf("the item is still in memcached after its idle timeout (%v)", err)
		}
		return nil
	})
}
