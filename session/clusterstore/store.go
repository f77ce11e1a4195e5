package clusterstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/session"
)

// Options configures a Store.
type Options struct {
	// Cluster configures the node the store runs (see cluster.Options for
	// every default). Cluster.Name is the node's route: the Manager using
	// the store must have the same Route. Cluster.OnExpire, if set, is
	// called for each expiry besides the store's session.ExpiryNotifier
	// function.
	Cluster cluster.Options
}

// Store is a session.Store replicated by a cluster node. All methods are
// safe for concurrent use.
type Store struct {
	node     *cluster.Node
	now      func() time.Time
	onExpire func(cluster.Record)
	notify   atomic.Pointer[func(session.Record, session.Reason)]
}

// Interfaces the Manager finds by type assertion.
var (
	_ session.Store          = (*Store)(nil)
	_ session.Claimer        = (*Store)(nil)
	_ session.Confirmer      = (*Store)(nil)
	_ session.ExpiryNotifier = (*Store)(nil)
	_ session.Readier        = (*Store)(nil)
	_ session.StatsReporter  = (*Store)(nil)
	_ session.StaleLoader    = (*Store)(nil)
)

// New starts the cluster node described by o.Cluster and returns the store
// over it. The node joins its peers in the background; Ready reports an
// error until it has received their sessions.
func New(o Options) (*Store, error) {
	s := &Store{now: time.Now, onExpire: o.Cluster.OnExpire}
	if c := o.Cluster.Clock; c != nil {
		s.now = c.Now
	}
	co := o.Cluster
	co.OnExpire = s.expired
	n, err := cluster.New(co)
	if err != nil {
		return nil, fmt.Errorf("clusterstore: %w", err)
	}
	s.node = n
	return s, nil
}

// Node returns the cluster node, for its Info, Members and Ready channel.
func (s *Store) Node() *cluster.Node { return s.node }

// Info returns the node's view of the cluster (GET /cluster). It walks
// every session: call it for monitoring, not per request.
func (s *Store) Info() cluster.Info { return s.node.Info() }

// Load returns session id: this node's copy when it has a live one, else
// the newest copy a live peer holds (cluster.Node.Find). The record's
// Route is its owner; the Manager claims it when that is another node.
func (s *Store) Load(ctx context.Context, id string) (session.Record, error) {
	r, err := s.node.Find(ctx, id)
	if err != nil {
		return session.Record{}, mapErr("load", id, err)
	}
	return record(r), nil
}

// Save creates (BaseVersion 0) or updates a session this node owns, and
// returns once the write is replicated as the cluster's acknowledgement
// mode requires. A created session is owned by this node: Delta.Route is
// not consulted (the Manager's Route must be the node's name).
func (s *Store) Save(ctx context.Context, d session.Delta) (session.SaveResult, error) {
	if err := session.CheckDelta(d); err != nil {
		return session.SaveResult{}, fmt.Errorf("clusterstore: %w", err)
	}
	if d.BaseVersion == 0 {
		r, err := s.node.Create(ctx, cluster.NewSession{ID: d.ID, Values: d.Set, IdleTimeout: d.IdleTimeout,
			Deadline: d.Deadline, Created: d.Created, LastAccess: d.LastAccess})
		if err != nil {
			return session.SaveResult{}, mapErr("create", d.ID, err)
		}
		return session.SaveResult{Version: r.Version}, nil
	}
	var expect map[string][]byte
	if len(d.Read) > 0 {
		expect = make(map[string][]byte, len(d.Read))
		for _, r := range d.Read {
			expect[r.Key] = r.Value
		}
	}
	res, err := s.node.Update(ctx, cluster.Delta{ID: d.ID, Base: d.BaseVersion, Set: d.Set, Remove: d.Removed,
		Expect: expect, ExpectBase: d.ReadAll, LastAccess: d.LastAccess})
	if err != nil {
		return session.SaveResult{}, mapErr("save", d.ID, err)
	}
	return session.SaveResult{Version: res.Record.Version, Conflicts: res.Conflicts}, nil
}

// Confirm checks that this node's copy of session id, which it owns, is
// the cluster's (cluster.Node.Confirm): with the majority level, that a
// majority still holds it under this node's ownership, so that a node cut
// off from the majority answers a read with 503 instead of a stale copy.
func (s *Store) Confirm(ctx context.Context, rec session.Record) error {
	return mapErr("confirm", rec.ID, s.node.Confirm(ctx, cluster.Record{ID: rec.ID, Owner: rec.Route, Epoch: rec.Epoch}))
}

// Delete invalidates a session this node owns: a replicated tombstone.
func (s *Store) Delete(ctx context.Context, id string) error {
	return mapErr("delete", id, s.node.Delete(ctx, id))
}

// Touch records a read of a session this node owns; peers get it in the
// next batch.
func (s *Store) Touch(ctx context.Context, id string, at time.Time) error {
	return mapErr("touch", id, s.node.Touch(ctx, id, at))
}

// Claim makes this node the owner of session id (a takeover, see
// cluster.Node.Claim) and returns the session as it now stands. route must
// be this node's name.
func (s *Store) Claim(ctx context.Context, id, route string) (session.Record, error) {
	if route != s.node.Name() {
		return session.Record{}, fmt.Errorf("clusterstore: claim for route %q on node %q", route, s.node.Name())
	}
	r, err := s.node.Claim(ctx, id)
	if err != nil {
		return session.Record{}, mapErr("claim", id, err)
	}
	return record(r), nil
}

// NotifyExpiry registers fn, called once, on the owner, for each session
// the cluster expires (idle timeout or absolute lifetime), once the expiry
// is replicated. It runs on the node's goroutines.
func (s *Store) NotifyExpiry(fn func(session.Record, session.Reason)) { s.notify.Store(&fn) }

// expired is the node's OnExpire.
func (s *Store) expired(r cluster.Record) {
	if s.onExpire != nil {
		s.onExpire(r)
	}
	fn := s.notify.Load()
	if fn == nil || *fn == nil {
		return
	}
	rec := record(r)
	why, ok := rec.Expired(s.now())
	if !ok {
		why = session.ReasonIdleTimeout // the owner's clock said so when it decided
	}
	(*fn)(rec, why)
}

// errNotReady is Ready's answer while the node joins.
var errNotReady = errors.New("clusterstore: receiving the sessions of the cluster")

// Ready returns nil once the node has received its peers' sessions.
func (s *Store) Ready() error {
	if s.node.IsReady() {
		return nil
	}
	return errNotReady
}

// Stats counts the live sessions this node holds a copy of (all of the
// cluster's: replication is all to all) and their approximate bytes. It
// walks every session.
func (s *Store) Stats() session.StoreStats {
	i := s.node.Info()
	return session.StoreStats{Sessions: i.Sessions, Bytes: i.Bytes}
}

// Handover makes this node's sessions safe on its peers and leaves the
// cluster: it waits until every live peer has acknowledged every write
// this node sent (cluster.Node.Flush; async writes included), then leaves,
// so that peers take the sessions over at their next request without
// waiting for this node. Call it on shutdown once no request can use the
// store any more; ctx bounds the wait for acknowledgements. The store is
// closed afterwards, even when the flush failed (then the error says which
// peers had not acknowledged).
func (s *Store) Handover(ctx context.Context) error {
	err := s.node.Flush(ctx)
	return errors.Join(err, s.node.Close())
}

// Close leaves the cluster without waiting for acknowledgements and stops
// the node.
func (s *Store) Close() error { return s.node.Close() }

// record converts a cluster record into a session record.
func record(r cluster.Record) session.Record {
	return session.Record{ID: r.ID, Route: r.Owner, Version: r.Version, Epoch: r.Epoch, Values: r.Values,
		Created: utc(r.Created), LastAccess: utc(r.LastAccess), IdleTimeout: r.IdleTimeout, Deadline: utc(r.Deadline)}
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// LoadStale returns this node's own copy of session id as it last received
// it, asking no peer and confirming nothing (session.StaleLoader,
// cluster.Node.LastKnown: never an owner's copy holding a write its peers
// did not acknowledge): with session.Options.StaleReads, a node cut off
// from its cluster's majority serves read-only requests from it, marked
// stale.
func (s *Store) LoadStale(_ context.Context, id string) (session.Record, error) {
	r, err := s.node.LastKnown(id)
	if err != nil {
		return session.Record{}, mapErr("load", id, err)
	}
	return record(r), nil
}
