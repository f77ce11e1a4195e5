package balancer

import "math"

// Failover uses rendezvous (highest random weight) hashing of the session
// id over the members that can take it: every request of a session, on
// every balancer instance, picks the same member, and when a member goes
// away only its own sessions move. The hash is fixed (FNV-1a and a 64-bit
// finalizer), never seeded per process, so that instances agree.

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mix is the splitmix64 finalizer: it spreads every input bit over the output.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// rendezvous returns the member of cands with the highest weighted score
// for session id, or nil if cands is empty.
func rendezvous(id string, cands []*Member) *Member {
	h := hashString(fnvOffset, id)
	var best *Member
	bestScore := math.Inf(-1)
	for _, m := range cands {
		// u is uniform in (0, 1); -w/ln(u) is the weighted rendezvous score.
		u := (float64(mix(h^m.routeHash)>>11) + 0.5) / (1 << 53)
		score := -float64(m.weight.Load()) / math.Log(u)
		if score > bestScore || (score == bestScore && m.route < best.route) {
			best, bestScore = m, score
		}
	}
	return best
}
