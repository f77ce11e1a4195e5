package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherlb/tether/session"
)

// ErrNotReplicated wraps the error of a write that fewer than
// Options.Replicas replicas acknowledged in time. The primary has the
// write and may keep it; a failover before the replicas copy it loses it.
var ErrNotReplicated = errors.New("redisstore: write not acknowledged by enough replicas")

// ErrCorrupt wraps the error of a Redis key that holds something other
// than a session this package wrote: another type, a malformed field, more
// than Options.MaxRecordBytes. Nothing is changed; Delete removes it.
var ErrCorrupt = errors.New("redisstore: not a session record")

// Store is a session.Store in Redis: a standalone server, a primary with
// replicas watched by Sentinel, or a Redis Cluster (any
// redis.UniversalClient). Besides session.Store it implements
// session.Claimer (any node may serve any session: it takes the session
// over by setting its route) and session.Locker (a lock per session in
// Redis, so that requests of one session on different nodes run one after
// another). It does not implement session.ExpiryNotifier: Redis drops
// expired sessions by key TTL, without keyspace notifications, so that
// sessions that expire are not reported (those found expired by a request
// are simply unknown).
type Store struct {
	c     redis.UniversalClient
	o     Options
	owned bool // Open made c: Close closes it
}

// New returns a Store over c. The caller keeps ownership of c: Close does
// not close it.
func New(c redis.UniversalClient, o Options) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Store{c: c, o: o.withDefaults()}, nil
}

// Client returns the client the Store uses.
func (s *Store) Client() redis.UniversalClient { return s.c }

// key returns the Redis key of session id.
func (s *Store) key(id string) string { return s.o.Prefix + "{" + id + "}" }

// us returns t in microseconds since the epoch; 0 for the zero time.
func us(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// ctx bounds one call by Options.Timeout.
func (s *Store) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, s.o.Timeout)
}

// Load returns the session id.
func (s *Store) Load(ctx context.Context, id string) (session.Record, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := loadScript.Run(ctx, s.c, []string{s.key(id)}, s.o.MaxRecordBytes).Slice()
	if err != nil {
		return session.Record{}, s.fail("load", id, err)
	}
	return s.record(id, v)
}

// record decodes a hash read by loadScript or claimScript, refusing an
// expired session by the Store's clock.
func (s *Store) record(id string, v []any) (session.Record, error) {
	if len(v) == 0 {
		return session.Record{}, fmt.Errorf("redisstore: %w", session.ErrNotFound)
	}
	rec, err := decode(id, v)
	if err != nil {
		return session.Record{}, fmt.Errorf("redisstore: session %s: %w: %w", session.ShortID(id), ErrCorrupt, err)
	}
	if _, expired := rec.Expired(s.o.Now()); expired {
		return session.Record{}, fmt.Errorf("redisstore: expired: %w", session.ErrNotFound)
	}
	return rec, nil
}

// Save applies d as session.Store specifies, in one script.
func (s *Store) Save(ctx context.Context, d session.Delta) (session.SaveResult, error) {
	if err := session.CheckDelta(d); err != nil {
		return session.SaveResult{}, fmt.Errorf("redisstore: %w", err)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	now := us(s.o.Now())
	if d.BaseVersion == 0 {
		args := []any{now, d.Route, us(d.Created), us(d.LastAccess), d.IdleTimeout.Microseconds(), us(d.Deadline), len(d.Set)}
		for k, v := range d.Set {
			args = append(args, k, v)
		}
		res, err := s.write(ctx, createScript, d.ID, args)
		if err != nil {
			return session.SaveResult{}, s.fail("create", d.ID, err)
		}
		if st, _ := status(res); st == "exists" {
			return session.SaveResult{}, fmt.Errorf("redisstore: create: %w", session.ErrExists)
		}
		return session.SaveResult{Version: 1}, nil
	}
	res, err := s.write(ctx, saveScript, d.ID, saveArgs(now, d))
	if err != nil {
		return session.SaveResult{}, s.fail("save", d.ID, err)
	}
	return saveResult(d, res)
}

// saveArgs returns saveScript's ARGV for d.
func saveArgs(now int64, d session.Delta) []any {
	readAll := 0
	if d.ReadAll {
		readAll = 1
	}
	args := make([]any, 0, 7+3*len(d.Read)+2*len(d.Set)+len(d.Removed))
	args = append(args, now, d.BaseVersion, us(d.LastAccess), readAll, len(d.Read))
	for _, r := range d.Read {
		if r.Value == nil {
			args = append(args, r.Key, 0, "")
		} else {
			args = append(args, r.Key, 1, r.Value)
		}
	}
	args = append(args, len(d.Set))
	for k, v := range d.Set {
		args = append(args, k, v)
	}
	args = append(args, len(d.Removed))
	for _, k := range d.Removed {
		args = append(args, k)
	}
	return args
}

// saveResult interprets saveScript's answer.
func saveResult(d session.Delta, res []any) (session.SaveResult, error) {
	st, rest := status(res)
	switch st {
	case "ok":
		if len(rest) < 1 {
			break
		}
		ver, ok := rest[0].(int64)
		if !ok {
			break
		}
		r := session.SaveResult{Version: uint64(ver)}
		for _, k := range rest[1:] {
			if ks, ok := k.(string); ok {
				r.Conflicts = append(r.Conflicts, ks)
			}
		}
		return r, nil
	case "notfound", "expired":
		return session.SaveResult{}, fmt.Errorf("redisstore: save: %s: %w", st, session.ErrNotFound)
	case "badbase":
		return session.SaveResult{}, fmt.Errorf("redisstore: base version %d after current %v: %w", d.BaseVersion, first(rest), session.ErrBadDelta)
	case "conflict":
		k, _ := first(rest).(string)
		if k == "" {
			return session.SaveResult{}, fmt.Errorf("redisstore: the session changed since version %d, and the request read all of it: %w", d.BaseVersion, session.ErrConflict)
		}
		return session.SaveResult{}, fmt.Errorf("redisstore: key %q changed since version %d: %w", k, d.BaseVersion, session.ErrConflict)
	}
	return session.SaveResult{}, fmt.Errorf("redisstore: save: unexpected answer %v: %w", res, session.ErrStore)
}

func first(v []any) any {
	if len(v) == 0 {
		return nil
	}
	return v[0]
}

// status splits a script's answer into its status word and the rest.
func status(res []any) (string, []any) {
	if len(res) == 0 {
		return "", nil
	}
	st, _ := res[0].(string)
	return st, res[1:]
}

// Delete removes the session id.
func (s *Store) Delete(ctx context.Context, id string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	cmd, err := s.run(ctx, deleteScript, id, []any{us(s.o.Now())})
	if err != nil {
		return s.fail("delete", id, err)
	}
	if n, _ := cmd.Int64(); n == 0 {
		return fmt.Errorf("redisstore: delete: %w", session.ErrNotFound)
	}
	return nil
}

// Touch moves the session's last access to at, if later.
func (s *Store) Touch(ctx context.Context, id string, at time.Time) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	res, err := touchScript.Run(ctx, s.c, []string{s.key(id)}, us(s.o.Now()), us(at)).Slice()
	if err != nil {
		return s.fail("touch", id, err)
	}
	if st, _ := status(res); st != "ok" {
		return fmt.Errorf("redisstore: touch: %s: %w", st, session.ErrNotFound)
	}
	return nil
}

// Claim makes route the session's route: any node may serve any session,
// so taking it over is only recording where it is served now.
func (s *Store) Claim(ctx context.Context, id, route string) (session.Record, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	cmd, err := s.run(ctx, claimScript, id, []any{us(s.o.Now()), route, s.o.MaxRecordBytes})
	if err != nil {
		return session.Record{}, s.fail("claim", id, err)
	}
	v, err := cmd.Slice()
	if err != nil {
		return session.Record{}, s.fail("claim", id, err)
	}
	return s.record(id, v)
}

// write runs a script that answers an array, as run does.
func (s *Store) write(ctx context.Context, sc *redis.Script, id string, args []any) ([]any, error) {
	cmd, err := s.run(ctx, sc, id, args)
	if err != nil {
		return nil, err
	}
	return cmd.Slice()
}

// run runs a writing script on session id's key and, with
// Options.Replicas, waits on the same connection for the replicas to
// acknowledge it (WAIT).
func (s *Store) run(ctx context.Context, sc *redis.Script, id string, args []any) (*redis.Cmd, error) {
	keys := []string{s.key(id)}
	if s.o.Replicas == 0 {
		cmd := sc.Run(ctx, s.c, keys, args...)
		return cmd, cmd.Err()
	}
	c, err := s.primary(ctx, keys[0])
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		var cmd *redis.Cmd
		var wait *redis.Cmd
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			if attempt == 0 {
				cmd = sc.EvalSha(ctx, p, keys, args...)
			} else {
				cmd = sc.Eval(ctx, p, keys, args...)
			}
			wait = p.Do(ctx, "wait", s.o.Replicas, s.o.ReplicaTimeout.Milliseconds())
			return nil
		})
		if attempt == 0 && redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			continue // nothing ran: send the script itself
		}
		if err := cmd.Err(); err != nil {
			return cmd, err
		}
		if err != nil {
			return cmd, err
		}
		if n, err := wait.Int64(); err != nil || n < int64(s.o.Replicas) {
			return cmd, fmt.Errorf("acknowledged by %d of %d replicas within %v: %w", n, s.o.Replicas, s.o.ReplicaTimeout, ErrNotReplicated)
		}
		return cmd, nil
	}
}

// primary returns a client of the primary that holds key, for commands
// that must share its connection.
func (s *Store) primary(ctx context.Context, key string) (*redis.Client, error) {
	switch c := s.c.(type) {
	case *redis.Client:
		return c, nil
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	}
	return nil, fmt.Errorf("redisstore: Replicas needs a *redis.Client or *redis.ClusterClient, not %T", s.c)
}

// fail wraps a Redis error of operation op on session id. The messages
// name the key, never a value or a credential.
func (s *Store) fail(op, id string, err error) error {
	if msg := err.Error(); strings.HasPrefix(msg, "CORRUPT ") || strings.HasPrefix(msg, "TOOBIG ") ||
		strings.HasPrefix(msg, "WRONGTYPE ") {
		return fmt.Errorf("redisstore: %s %s: %w: %s", op, session.ShortID(id), ErrCorrupt, msg)
	}
	return fmt.Errorf("redisstore: %s %s: %w", op, session.ShortID(id), err)
}

// decode turns a hash (field, value, ...) into a Record, refusing anything
// this package does not write.
func decode(id string, v []any) (session.Record, error) {
	if len(v)%2 != 0 {
		return session.Record{}, fmt.Errorf("odd reply of %d elements", len(v))
	}
	rec := session.Record{ID: id, Values: make(map[string][]byte, len(v)/4)}
	var seen [6]bool
	for i := 0; i < len(v); i += 2 {
		f, ok1 := v[i].(string)
		val, ok2 := v[i+1].(string)
		if !ok1 || !ok2 {
			return session.Record{}, fmt.Errorf("field %d is not a string", i/2)
		}
		if k, ok := strings.CutPrefix(f, "k:"); ok {
			rec.Values[k] = []byte(val)
			continue
		}
		if strings.HasPrefix(f, "w:") {
			continue
		}
		j := strings.Index("vrcaid", strings.TrimPrefix(f, "m:"))
		if !strings.HasPrefix(f, "m:") || len(f) != 3 || j < 0 {
			return session.Record{}, fmt.Errorf("unknown field %q", f)
		}
		seen[j] = true
		if f == "m:r" {
			rec.Route = val
			continue
		}
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil || n < 0 {
			return session.Record{}, fmt.Errorf("field %s: %q is not a non-negative integer", f, val)
		}
		switch f {
		case "m:v":
			rec.Version = uint64(n)
		case "m:c":
			rec.Created = time.UnixMicro(n).UTC()
		case "m:a":
			rec.LastAccess = time.UnixMicro(n).UTC()
		case "m:i":
			rec.IdleTimeout = time.Duration(n) * time.Microsecond
		case "m:d":
			if n > 0 {
				rec.Deadline = time.UnixMicro(n).UTC()
			}
		}
	}
	for j, ok := range seen {
		if !ok {
			return session.Record{}, fmt.Errorf("field m:%c missing", "vrcaid"[j])
		}
	}
	if rec.Version == 0 {
		return session.Record{}, fmt.Errorf("version 0")
	}
	return rec, nil
}
