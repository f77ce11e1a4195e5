package memcachestore

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Options configure a Store. The zero value of every field means the default
// stated on it.
type Options struct {
	// Prefix starts the name of every item the Store writes, so that
	// several applications can share the servers. Zero means "tether:".
	// A session is the item PREFIX+ID, its lock PREFIX+ID+":lock".
	Prefix string

	// Timeout bounds each network read or write to a server (gomemcache
	// has no context). Zero means 500 ms.
	Timeout time.Duration

	// Retries bounds how many times a write is tried again after another
	// writer changed the session between its read and its compare-and-swap
	// (the read checks are redone each time). Zero means 20. Each try
	// again waits a random pause first (RetryBackoff); after the last one
	// the write fails with session.ErrConflict.
	Retries int
	// RetryBackoff is the window of the first pause before a write is tried
	// again: each pause is uniformly random in [0, w), and w starts at
	// RetryBackoff and doubles after every lost compare-and-swap, up to
	// RetryBackoffMax ("full jitter"). Tried again at once, the writers the
	// scheduler runs first win every race and one may lose them all; random
	// pauses spread the writers out. A pause ends early, and the call
	// returns the context's error, when the call's context ends. Zero means
	// 1 ms: a read and a compare-and-swap take well under a millisecond on a
	// local network, so the first window already holds a few attempts.
	RetryBackoff time.Duration
	// RetryBackoffMax bounds the window of a pause, even one below
	// RetryBackoff. Zero means 50 ms: wide enough to spread a dozen writers
	// whose attempts take a few milliseconds each on a loaded host, yet a
	// write that loses all 20 default retries waits at most 0.76 s in all
	// (half that on average) before its 409.
	RetryBackoffMax time.Duration

	// MaxRecordBytes bounds an encoded session: a larger write fails with
	// session.ErrStoreFull, a larger item is refused at Load. memcached
	// stores items up to its -I size (1 MiB by default). Zero means 1 MiB
	// minus 1 KiB for the item's own overhead.
	MaxRecordBytes int

	// LockLease is how long a session's lock lives in memcached before its
	// holder renews it (memcached counts whole seconds: at least 2s, and
	// the holder counts on one second less). Zero means 2 seconds.
	LockLease time.Duration
	// LockPoll is the longest pause between two attempts to take a held
	// lock. Zero means 20 ms.
	LockPoll time.Duration

	// Now is the clock for session expiry. Nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = "tether:" // apart from the application's own items
	}
	if o.Timeout == 0 {
		o.Timeout = 500 * time.Millisecond // gomemcache's default
	}
	if o.Retries == 0 {
		o.Retries = 20 // one per concurrent writer of a session, and then some
	}
	if o.RetryBackoff == 0 {
		o.RetryBackoff = time.Millisecond // a few memcached round trips
	}
	if o.RetryBackoffMax == 0 {
		o.RetryBackoffMax = 50 * time.Millisecond // 20 pauses: 0.76 s at most
	}
	if o.MaxRecordBytes == 0 {
		o.MaxRecordBytes = 1<<20 - 1<<10 // memcached's default item size, less its overhead
	}
	if o.LockLease == 0 {
		o.LockLease = 2 * time.Second // memcached's shortest useful expiry
	}
	if o.LockPoll == 0 {
		o.LockPoll = 20 * time.Millisecond // a waiter notices a free lock this soon at worst
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate reports mistakes in o.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case len(o.Prefix) > 100:
		return fmt.Errorf("memcachestore: Prefix of %d bytes: at most 100 (keys are at most 250)", len(o.Prefix))
	case o.Timeout < 0 || o.Retries < 0 || o.MaxRecordBytes < 0 || o.LockPoll < 0:
		return fmt.Errorf("memcachestore: Timeout, Retries, MaxRecordBytes and LockPoll must not be negative")
	case o.RetryBackoff < 0 || o.RetryBackoffMax < 0:
		return fmt.Errorf("memcachestore: RetryBackoff %v, RetryBackoffMax %v: must not be negative", o.RetryBackoff, o.RetryBackoffMax)
	case o.LockLease < 2*time.Second:
		return fmt.Errorf("memcachestore: LockLease %v: at least 2s (memcached counts whole seconds)", o.LockLease)
	}
	return nil
}

// ParseURL reads a store URL, memcached://HOST[:PORT][,HOST[:PORT]…]
// (port 11211), into the servers' addresses. memcached has no password in
// its text protocol: keep it on a private network.
func ParseURL(raw string) ([]string, error) {
	rest, ok := strings.CutPrefix(raw, "memcached://")
	if !ok {
		return nil, fmt.Errorf("memcachestore: %q: want memcached://HOST:PORT[,HOST:PORT…]", raw)
	}
	if strings.ContainsAny(rest, "/?#@") {
		return nil, fmt.Errorf("memcachestore: %q: only hosts and ports (no user, path or options)", raw)
	}
	var out []string
	for _, h := range strings.Split(rest, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			host, port = h, "11211"
		}
		if n, err := strconv.Atoi(port); host == "" || strings.ContainsAny(host, "[] ") || err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("memcachestore: %q: bad server %q", raw, h)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out, nil
}
