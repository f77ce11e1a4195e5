package redisstore

import (
	"fmt"
	"time"
)

// Options configure a Store. The zero value of every field means the default
// stated on it.
type Options struct {
	// Prefix starts the name of every key the Store writes, so that
	// several applications can share one database. Zero means "tether:".
	// A session is the hash PREFIX{ID} and its lock the string
	// PREFIX{ID}:lock: the braces keep both in one Redis Cluster slot.
	Prefix string

	// Timeout bounds every call to Redis, including a Save's replica
	// acknowledgement. Zero means 2 seconds.
	Timeout time.Duration

	// Replicas is how many replicas must acknowledge a write (Redis WAIT)
	// before Save, Delete and Claim return. Zero means none: a write is
	// acknowledged once the primary has it, and a primary that dies before
	// its replicas copied it loses it. With Replicas > 0 a write that fewer
	// replicas acknowledge within ReplicaTimeout fails with an error
	// wrapping ErrNotReplicated (the primary may still keep it).
	Replicas int
	// ReplicaTimeout bounds the wait for Replicas. Zero means 1 second;
	// it must be shorter than Timeout.
	ReplicaTimeout time.Duration

	// MaxRecordBytes bounds a stored session, keys and values together: a
	// larger one is refused at Load (an error, the bytes are never sent).
	// It guards against what else may have written to the key; the
	// Manager's Options.MaxSessionBytes bounds what the application
	// writes. Zero means 8 MiB.
	MaxRecordBytes int

	// LockLease is how long a session's lock lives in Redis before its
	// holder renews it (while the request runs, up to the Manager's
	// LockHold). A node that dies holding a lock blocks the session's
	// requests on other nodes for at most this long. Zero means 1 second.
	LockLease time.Duration
	// LockPoll is the longest pause between two attempts to take a held
	// lock; waiters start at 1 ms and double up to it. Zero means 20 ms.
	LockPoll time.Duration

	// Now is the clock for session expiry. Nil means time.Now.
	Now func() time.Time
}

func defaults() Options {
	return Options{
		Prefix:         "tether:",             // apart from the application's own keys
		Timeout:        2 * time.Second,       // a healthy Redis answers in a millisecond
		ReplicaTimeout: time.Second,           // replicas on the same network copy in milliseconds
		MaxRecordBytes: 8 << 20,               // eight times the Manager's default MaxSessionBytes
		LockLease:      time.Second,           // a dead holder blocks its sessions this long at most
		LockPoll:       20 * time.Millisecond, // a waiter notices a free lock this soon at worst
		Now:            time.Now,              // the wall clock
	}
}

// withDefaults returns o with its zero fields set to the defaults.
func (o Options) withDefaults() Options {
	d := defaults()
	if o.Prefix == "" {
		o.Prefix = d.Prefix
	}
	if o.Timeout == 0 {
		o.Timeout = d.Timeout
	}
	if o.ReplicaTimeout == 0 {
		o.ReplicaTimeout = d.ReplicaTimeout
	}
	if o.MaxRecordBytes == 0 {
		o.MaxRecordBytes = d.MaxRecordBytes
	}
	if o.LockLease == 0 {
		o.LockLease = d.LockLease
	}
	if o.LockPoll == 0 {
		o.LockPoll = d.LockPoll
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	return o
}

// Validate reports mistakes in o.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case o.Timeout < 0:
		return fmt.Errorf("redisstore: Timeout %v: must not be negative", o.Timeout)
	case o.Replicas < 0:
		return fmt.Errorf("redisstore: Replicas %d: must not be negative", o.Replicas)
	case o.ReplicaTimeout < 0 || o.Replicas > 0 && o.ReplicaTimeout >= o.Timeout:
		return fmt.Errorf("redisstore: ReplicaTimeout %v: must be positive and shorter than Timeout %v", o.ReplicaTimeout, o.Timeout)
	case o.MaxRecordBytes < 0:
		return fmt.Errorf("redisstore: MaxRecordBytes %d: must not be negative", o.MaxRecordBytes)
	case o.LockLease < 10*time.Millisecond:
		return fmt.Errorf("redisstore: LockLease %v: must be at least 10ms", o.LockLease)
	case o.LockPoll < 0:
		return fmt.Errorf("redisstore: LockPoll %v: must not be negative", o.LockPoll)
	}
	return nil
}
