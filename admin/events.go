package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// feedWriteTimeout bounds one write to a live feed client.
const feedWriteTimeout = 10 * time.Second

// events serves the live feed, GET /api/v1/events, as server-sent events:
//
//	event: snapshot   data: a Snapshot, at once and every FeedInterval
//	event: audit      data: an AuditEntry (id: its id), as changes happen;
//	                  first the kept ones with an id above ?after=ID
//	event: bye        the feed ends (FeedMaxAge, shutdown): reconnect
//
// It needs the token in the Authorization header like everything else, so
// browsers read it with fetch (EventSource cannot send headers).
func (m *Manager) events(w http.ResponseWriter, r *http.Request, _ caller) error {
	after, _, err := auditParams(r.URL.Query())
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx in front: do not buffer
	w.WriteHeader(http.StatusOK)

	send := func(event string, id uint64, v any) bool {
		data, err := json.Marshal(v)
		if err != nil {
			return false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(feedWriteTimeout))
		if id != 0 {
			_, err = fmt.Fprintf(w, "event: %s\nid: %d\ndata: %s\n\n", event, id, data)
		} else {
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		}
		return err == nil && rc.Flush() == nil
	}
	sendAudit := func() (<-chan struct{}, bool) {
		entries, changed := m.audit.since(after, 1000)
		for _, e := range entries {
			if !send("audit", e.ID, e) {
				return nil, false
			}
			after = e.ID
		}
		return changed, true
	}

	changed, ok := sendAudit()
	if !ok || !send("snapshot", 0, m.snapshot()) {
		return nil
	}
	tick := time.NewTicker(m.o.FeedInterval)
	defer tick.Stop()
	end := time.NewTimer(m.o.FeedMaxAge)
	defer end.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-m.closing:
			send("bye", 0, map[string]string{"reason": "the manager is shutting down"})
			return nil
		case <-end.C:
			send("bye", 0, map[string]string{"reason": "reconnect"})
			return nil
		case <-changed:
			if changed, ok = sendAudit(); !ok {
				return nil
			}
		case <-tick.C:
			if !send("snapshot", 0, m.snapshot()) {
				return nil
			}
		}
	}
}
