package group

import (
	"fmt"
	"hash/maphash"
	"testing"
)

// BenchmarkSessionHash: the group's keyed hash of a session id, run by the
// balancer for every request with a session (instead of maphash).
func BenchmarkSessionHash(b *testing.B) {
	k, err := newHashKey(testSecret)
	if err != nil {
		b.Fatal(err)
	}
	id := "0123456789abcdef0123456789abcdef"
	b.Run("group", func(b *testing.B) {
		var sink uint64
		for b.Loop() {
			sink += k.sum(id)
		}
		_ = sink
	})
	b.Run("maphash", func(b *testing.B) {
		seed := maphash.MakeSeed()
		var sink uint64
		for b.Loop() {
			sink += maphash.String(seed, id)
		}
		_ = sink
	})
}

// BenchmarkTally: what an instance pays every SyncInterval per tracked
// session (a sketch add), and per member (encoding its sketch).
func BenchmarkTally(b *testing.B) {
	k, err := newHashKey(testSecret)
	if err != nil {
		b.Fatal(err)
	}
	hashes := make([]uint64, 1<<16)
	for i := range hashes {
		hashes[i] = k.sum(fmt.Sprint(i))
	}
	b.Run("add", func(b *testing.B) {
		var s Sketch
		i := 0
		for b.Loop() {
			s.Add(hashes[i&(len(hashes)-1)])
			i++
		}
	})
	b.Run("encode-dense", func(b *testing.B) {
		var s Sketch
		for _, h := range hashes {
			s.Add(h)
		}
		for b.Loop() {
			s.MarshalBinary()
		}
	})
}
