package admin

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// AuditEntry records one change of a member: who made it, from where,
// what it changed, the values before and after, and when. Changes made by
// the balancer itself (a drain that finished, a member announcing it is
// draining) and by the configuration file are recorded too.
type AuditEntry struct {
	ID   uint64    `json:"id"`
	Time time.Time `json:"time"`
	// Actor is who made the change: "read-write token" for the API,
	// "config" for the configuration file, "balancer" for the balancer
	// itself, "member" for the member's own announcement.
	Actor string `json:"actor"`
	// Operator is the name the client gave in the X-Tether-Operator header
	// (tether ctl sends user@host). Self-declared: not authenticated.
	Operator string `json:"operator,omitempty"`
	// Remote is the client's address.
	Remote   string `json:"remote,omitempty"`
	Balancer string `json:"balancer"`
	Member   string `json:"member,omitempty"`
	// Action is "state", "weight", "add", "remove" or "forget" (a run-time
	// change the configuration file overrode).
	Action string      `json:"action"`
	Before *AuditValue `json:"before,omitempty"`
	After  *AuditValue `json:"after,omitempty"`
	// Reason is the client's reason, or what made an automatic change.
	Reason string `json:"reason,omitempty"`
	// Instance is the instance of the group the change was made through
	// (group.name). Empty outside a group.
	Instance string `json:"instance,omitempty"`
	// OriginID is the entry's id on Instance, when that is another
	// instance: the change was made there and applied here.
	OriginID uint64 `json:"origin_id,omitempty"`
}

// AuditValue is the part of a member an audit entry is about.
type AuditValue struct {
	State  string `json:"state,omitempty"`
	Weight int    `json:"weight,omitempty"`
	URL    string `json:"url,omitempty"`
}

// LogValue logs only the fields that are set.
func (v AuditValue) LogValue() slog.Value {
	var attrs []slog.Attr
	if v.State != "" {
		attrs = append(attrs, slog.String("state", v.State))
	}
	if v.Weight != 0 {
		attrs = append(attrs, slog.Int("weight", v.Weight))
	}
	if v.URL != "" {
		attrs = append(attrs, slog.String("url", v.URL))
	}
	return slog.GroupValue(attrs...)
}

// Summary describes the change for people: "state active -> draining",
// "weight 1 -> 3", "added http://… (active, weight 1)".
func (e AuditEntry) Summary() string {
	var b, a AuditValue
	if e.Before != nil {
		b = *e.Before
	}
	if e.After != nil {
		a = *e.After
	}
	switch e.Action {
	case "add":
		return fmt.Sprintf("added %s (%s, weight %d)", a.URL, a.State, a.Weight)
	case "remove":
		return fmt.Sprintf("removed %s (was %s)", b.URL, b.State)
	case "forget":
		return "run-time change forgotten"
	}
	var parts []string
	if a.State != "" {
		parts = append(parts, "state "+b.State+" -> "+a.State)
	}
	if a.Weight != 0 {
		parts = append(parts, fmt.Sprintf("weight %d -> %d", b.Weight, a.Weight))
	}
	return strings.Join(parts, ", ")
}

// auditLog keeps the latest entries in memory, writes each to the logger,
// and wakes the live feeds.
type auditLog struct {
	logger   *slog.Logger
	now      func() time.Time
	file     *auditFile // nil: none
	instance string     // the group instance this is, stamped on entries
	shared   sharedAudit

	mu      sync.Mutex
	next    uint64
	entries []AuditEntry // ring of at most size, oldest first from head
	head    int
	size    int
	changed chan struct{} // closed and replaced on every add
}

func newAuditLog(size int, logger *slog.Logger, now func() time.Time) *auditLog {
	return &auditLog{logger: logger, now: now, size: size, next: 1, changed: make(chan struct{})}
}

// add stamps e with an id and the time, keeps it and logs it.
func (l *auditLog) add(e AuditEntry) AuditEntry {
	e.Time = l.now()
	return l.keep(e)
}

// addShared keeps e, an entry another instance of the group made (origin,
// if e names no instance), unless the log has it already. It keeps e's
// time and gives it an id here.
func (l *auditLog) addShared(e AuditEntry, origin string) {
	if e.Instance == "" {
		e.Instance = origin
	}
	if e.OriginID == 0 {
		e.OriginID = e.ID
	}
	if !l.shared.first(auditKey{e.Instance, e.OriginID}) {
		return
	}
	l.keep(e)
}

// first reports whether k is seen for the first time, and remembers it.
func (s *sharedAudit) first(k auditKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[auditKey]bool{}
	}
	if s.seen[k] {
		return false
	}
	s.seen[k] = true
	s.fifo = append(s.fifo, k)
	if len(s.fifo) > maxSharedAudit {
		delete(s.seen, s.fifo[0])
		s.fifo = s.fifo[1:]
	}
	return true
}

// keep numbers e, keeps it and logs it.
func (l *auditLog) keep(e AuditEntry) AuditEntry {
	if e.Instance == "" {
		e.Instance = l.instance
	}
	l.mu.Lock()
	e.ID = l.next
	if e.OriginID == 0 && e.Instance != "" {
		// Made here: the group may bring it back (after a restart, or as
		// a change that lost); it is in the log already.
		l.shared.first(auditKey{e.Instance, e.ID})
	}
	l.next++
	if len(l.entries) < l.size {
		l.entries = append(l.entries, e)
	} else {
		l.entries[l.head] = e
		l.head = (l.head + 1) % l.size
	}
	close(l.changed)
	l.changed = make(chan struct{})
	if l.file != nil {
		// Under l.mu, so that the file's lines are in id order.
		if err := l.file.write(e); err != nil {
			l.logger.Error("audit: the entry could not be written to the audit file; it is in this log", "file", l.file.path, "id", e.ID, "err", err)
		}
	}
	l.mu.Unlock()

	attrs := []slog.Attr{
		slog.Uint64("id", e.ID), slog.String("actor", e.Actor), slog.String("balancer", e.Balancer),
		slog.String("member", e.Member), slog.String("action", e.Action),
	}
	if e.Operator != "" {
		attrs = append(attrs, slog.String("operator", e.Operator))
	}
	if e.Remote != "" {
		attrs = append(attrs, slog.String("remote", e.Remote))
	}
	if e.Before != nil {
		attrs = append(attrs, slog.Any("before", *e.Before))
	}
	if e.After != nil {
		attrs = append(attrs, slog.Any("after", *e.After))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	if e.Instance != "" {
		attrs = append(attrs, slog.String("instance", e.Instance))
	}
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "audit", attrs...)
	return e
}

// restore keeps entries read back from the audit file (oldest first) and
// numbers the next entry after the last of them. Call it before any add.
func (l *auditLog) restore(entries []AuditEntry) {
	if len(entries) > l.size {
		entries = entries[len(entries)-l.size:]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries, l.head = append([]AuditEntry(nil), entries...), 0
	for _, e := range entries {
		switch {
		case e.OriginID != 0:
			l.shared.first(auditKey{e.Instance, e.OriginID})
		case e.Instance != "":
			l.shared.first(auditKey{e.Instance, e.ID})
		}
	}
	if n := len(entries); n > 0 {
		l.next = entries[n-1].ID + 1
	}
}

// since returns up to limit entries with an id above after, oldest first,
// and a channel closed at the next add.
func (l *auditLog) since(after uint64, limit int) ([]AuditEntry, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []AuditEntry
	for i := range l.entries {
		e := l.entries[(l.head+i)%len(l.entries)]
		if e.ID > after {
			out = append(out, e)
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, l.changed
}
