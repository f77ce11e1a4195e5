package memcachestore

import (
	"reflect"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
)

// FuzzDecode: no item makes decode panic, and what it accepts encodes to
// bytes that decode to the same record.
func FuzzDecode(f *testing.F) {
	r := &record{Record: session.Record{ID: "id", Route: "n1", Version: 3, Created: time.UnixMicro(1).UTC(),
		LastAccess: time.UnixMicro(2).UTC(), IdleTimeout: time.Minute, Values: map[string][]byte{"a": []byte("1")}},
		wrote: map[string]uint64{"a": 2, "gone": 3}}
	f.Add(encode(nil, r))
	f.Add([]byte("tms1"))
	f.Add([]byte("hello"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decode("id", b)
		if err != nil {
			return
		}
		again, err := decode("id", encode(nil, r))
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("decode(%x) = %+v, encoded and decoded again %+v, %v", b, r, again, err)
		}
	})
}
