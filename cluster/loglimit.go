package cluster

import (
	"log/slog"
	"sync"
	"time"
)

// logLimiter logs at most one warning per key and interval, counting the
// ones it suppressed, so that a peer sending garbage in a loop cannot flood
// the log.
type logLimiter struct {
	log      *slog.Logger
	interval time.Duration
	mu       sync.Mutex // protects last and dropped (a leaf)
	last     map[string]time.Time
	dropped  map[string]int
}

func newLogLimiter(log *slog.Logger, interval time.Duration) *logLimiter {
	return &logLimiter{log: log, interval: interval, last: map[string]time.Time{}, dropped: map[string]int{}}
}

func (l *logLimiter) warn(key, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.interval {
		l.dropped[key]++
		l.mu.Unlock()
		return
	}
	if len(l.last) > 1024 { // keys come from a small fixed set; this only bounds misuse
		clear(l.last)
	}
	l.last[key] = now
	n := l.dropped[key]
	delete(l.dropped, key)
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.log.Warn(msg, args...)
}
