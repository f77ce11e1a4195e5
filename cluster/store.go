package cluster

import (
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// maxPending bounds the deltas buffered for one session while its base
// version is missing; beyond it deltas are not buffered but the fetch of
// the full record, which contains them, stays requested.
const maxPending = 128

// entry is one session's slot: the record (nil when this node knows only a
// promise), the acceptor's promise, and deltas waiting for their base.
// Every field is guarded by mu.
type entry struct {
	mu       sync.Mutex
	gone     bool // removed from the store; callers must look the id up again
	mine     bool // this incarnation created the record or won it by a takeover
	rec      *record
	promised ballot
	pending  []pendingDelta
	fetchAt  int64 // when a fetch for this session was last sent (Unix ns, real time)
	raisedAt int64 // when promised last went up (Unix ns, real time)
	created  int64 // when the entry appeared (Unix ns, node clock), for promise GC
	// unsure is the newest version of this owner's writes that failed to
	// be acknowledged (0: none): the record holds writes no peer may have,
	// so the owner confirms it with its peers before a read returns it.
	unsure uint64
	// grantTo and grantUntil are the lease this node granted on the session
	// (see lease.go): to which owner, and until when (leases.now).
	grantTo    string
	grantUntil int64
	// heldUntil is when this node, the owner, stops trusting its lease.
	heldUntil int64
}

// pendingDelta is a delta received before the version it applies on.
type pendingDelta struct {
	d    *deltaMsg
	from string // the peer that sent it, owed an acknowledgement
}

// applyStatus is what applying a replication message did.
type applyStatus int

const (
	statusApplied applyStatus = iota // applied now or earlier: acknowledge
	statusFenced                     // older ballot than promised: reject
	statusPending                    // buffered until its base arrives: fetch it
	statusIgnored                    // nothing to acknowledge
)

// owned reports whether node self may write the entry's session: the
// record is live, under self's ballot, won by this very incarnation (a
// restarted node re-claims what its past self owned), and no takeover has
// been promised since.
func (e *entry) owned(self string) bool {
	return e.holds(self) && !e.rec.deleted
}

// holds reports whether the entry's record, live or a tombstone, is node
// self's under the ballot this very incarnation won, with no takeover
// promised since: what self must make durable before a read trusts it.
func (e *entry) holds(self string) bool {
	r := e.rec
	return r != nil && e.mine && r.bal.node == self && e.promised == r.bal
}

// ack returns the acknowledgement entry for status s of session id.
func (e *entry) ack(id string, s applyStatus) (ackEntry, bool) {
	switch s {
	case statusApplied:
		if e.rec == nil {
			return ackEntry{}, false
		}
		return ackEntry{id: id, status: ackApplied, bal: e.rec.bal, version: e.rec.version}, true
	case statusFenced:
		return ackEntry{id: id, status: ackFenced, bal: e.promised}, true
	}
	return ackEntry{}, false
}

// raise records that ballot b has won (or is running) a takeover.
func (e *entry) raise(b ballot) {
	if b.cmp(e.promised) > 0 {
		e.promised = b
		e.raisedAt = time.Now().UnixNano()
	}
	if e.rec != nil {
		e.rec.promised = e.promised
	}
}

// promise is the acceptor's side of takeover phase 1: it promises b unless
// it has promised a higher ballot.
func (e *entry) promise(b ballot) bool {
	if b.cmp(e.promised) < 0 {
		return false
	}
	e.raise(b)
	return true
}

// applyDelta applies a replicated delta, buffers it if its base version is
// missing, or rejects it if its ballot is stale. drained lists buffered
// deltas that this one (through drain) settled, with their status.
func (e *entry) applyDelta(d *deltaMsg, from string) (applyStatus, []settled) {
	if d.bal.cmp(e.promised) < 0 {
		return statusFenced, nil
	}
	e.raise(d.bal)
	if r := e.rec; r != nil {
		if r.cmpVersion(d.bal, d.version) >= 0 {
			return statusApplied, nil // a duplicate: we have it or newer
		}
		if r.bal == d.bal && r.version+1 == d.version && !r.deleted {
			applyDeltaTo(r, d)
			return statusApplied, e.drain()
		}
	}
	if len(e.pending) < maxPending && !slices.ContainsFunc(e.pending, func(p pendingDelta) bool {
		return p.d.bal == d.bal && p.d.version == d.version
	}) {
		e.pending = append(e.pending, pendingDelta{d: d, from: from})
	}
	return statusPending, nil
}

// settled is a buffered delta that has been applied, superseded or fenced.
type settled struct {
	from string
	ack  ackEntry
}

// drain applies buffered deltas that now follow the record and drops those
// the record already contains or that a newer promise fences.
func (e *entry) drain() []settled {
	var out []settled
	for progress := true; progress && len(e.pending) > 0; {
		progress = false
		kept := e.pending[:0]
		for _, p := range e.pending {
			r := e.rec
			switch {
			case p.d.bal.cmp(e.promised) < 0:
				a, _ := e.ack(p.d.id, statusFenced)
				out = append(out, settled{p.from, a})
			case r != nil && r.cmpVersion(p.d.bal, p.d.version) >= 0:
				a, _ := e.ack(p.d.id, statusApplied)
				out = append(out, settled{p.from, a})
			case r != nil && r.bal == p.d.bal && r.version+1 == p.d.version && !r.deleted:
				applyDeltaTo(r, p.d)
				a, _ := e.ack(p.d.id, statusApplied)
				out = append(out, settled{p.from, a})
				progress = true
			default:
				kept = append(kept, p)
			}
		}
		clear(e.pending[len(kept):])
		e.pending = kept
	}
	if len(e.pending) == 0 {
		e.pending = nil
	}
	return out
}

// applyRecord merges a full record. An owner's record (copy false) is
// fenced by the promise and acknowledged; a copy is merged when newer and
// never acknowledged. Either way a newer record replaces the local one, and
// its promise raises ours.
func (e *entry) applyRecord(r *record, copy bool) (applyStatus, []settled) {
	if !copy && r.bal.cmp(e.promised) < 0 {
		return statusFenced, nil
	}
	if e.rec == nil || e.rec.cmpVersion(r.bal, r.version) < 0 {
		if e.rec == nil || e.rec.bal != r.bal {
			e.mine = false
		}
		e.rec = r
	}
	e.raise(r.bal)
	e.raise(r.promised)
	drained := e.drain()
	if copy {
		return statusIgnored, drained
	}
	return statusApplied, drained
}

// applyTouch moves a replica's last access forward.
func (e *entry) applyTouch(t touchItem) {
	if r := e.rec; r != nil && r.bal == t.bal && !r.deleted && t.access > r.access {
		r.access = t.access
	}
}

// applyDeltaTo applies d to r, which is at d.version-1 under d's ballot.
func applyDeltaTo(r *record, d *deltaMsg) {
	for _, p := range d.set {
		r.size += len(p.val) - len(r.vals[p.key])
		if _, ok := r.kver[p.key]; !ok {
			r.size += len(p.key) + 12
		}
		r.vals[p.key] = p.val
		r.kver[p.key] = d.version
	}
	for _, k := range d.del {
		r.size -= len(r.vals[k])
		delete(r.vals, k)
		if _, ok := r.kver[k]; !ok {
			r.size += len(k) + 12
		}
		r.kver[k] = d.version
	}
	r.version = d.version
	r.access = max(r.access, d.access)
	r.idle = d.idle
	r.deadline = d.deadline
}

// store holds the entries, sharded to keep lock contention low.
type store struct {
	seed   maphash.Seed
	shards [64]shard
}

type shard struct {
	mu sync.RWMutex // protects m; held only inside store.lock, remove and ids (a leaf)
	m  map[string]*entry
}

func newStore() *store {
	s := &store{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*entry)
	}
	return s
}

func (s *store) shard(id string) *shard {
	return &s.shards[maphash.String(s.seed, id)%uint64(len(s.shards))]
}

// lock returns the locked entry for id, creating it when create is set;
// nil when it does not exist and create is false.
func (s *store) lock(id string, create bool, now int64) *entry {
	sh := s.shard(id)
	for {
		sh.mu.RLock()
		e := sh.m[id]
		sh.mu.RUnlock()
		if e == nil {
			if !create {
				return nil
			}
			sh.mu.Lock()
			if e = sh.m[id]; e == nil {
				e = &entry{created: now}
				sh.m[id] = e
			}
			sh.mu.Unlock()
		}
		e.mu.Lock()
		if !e.gone {
			return e
		}
		e.mu.Unlock()
	}
}

// remove deletes the locked entry e of id from the store.
func (s *store) remove(id string, e *entry) {
	sh := s.shard(id)
	sh.mu.Lock()
	if sh.m[id] == e {
		delete(sh.m, id)
	}
	sh.mu.Unlock()
	e.gone = true
}

// ids returns a snapshot of the ids in the store.
func (s *store) ids() []string {
	var out []string
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for id := range sh.m {
			out = append(out, id)
		}
		sh.mu.RUnlock()
	}
	return out
}
