package session

import (
	"context"
	"errors"
	"net/http"
)

// Errors a Store returns, wrapped or not. Test with errors.Is.
var (
	// ErrNotFound: the store has no live session with that id.
	ErrNotFound = errors.New("session: not found")
	// ErrExists: Save tried to create a session whose id is taken.
	ErrExists = errors.New("session: id already exists")
	// ErrStoreFull: a bounded store refused a write that would exceed its
	// bounds. Nothing was stored.
	ErrStoreFull = errors.New("session: store full")
	// ErrBadDelta: Save was given a delta no Manager produces (a base
	// version the store never handed out, an empty id, a key both set and
	// removed).
	ErrBadDelta = errors.New("session: invalid delta")
	// ErrConflict: Save was refused because a value the request read
	// (Delta.Read, Delta.ReadAll) is no longer the stored one: another
	// request changed the session meanwhile. Nothing was stored. The
	// Manager answers 409.
	ErrConflict = errors.New("session: changed by another request")
)

// Errors the Manager and Session return.
var (
	// ErrEncoding: a value could not be encoded or decoded by the codec.
	ErrEncoding = errors.New("session: value cannot be encoded")
	// ErrTooLarge: a value, or the whole session, exceeds its size cap.
	ErrTooLarge = errors.New("session: value too large")
	// ErrCommitted: the session was changed after the response had started;
	// the change cannot be saved.
	ErrCommitted = errors.New("session: response already started")
	// ErrGone: the session ended (invalidated by another request, expired,
	// evicted) while this request was using it; this request's changes
	// were not saved.
	ErrGone = errors.New("session: session ended during the request")
	// ErrStore wraps every other error a Store returned.
	ErrStore = errors.New("session: store failed")
	// ErrBusy: the request waited Options.LockWait for the requests ahead
	// of it on the same session, and gave up. Nothing was read or saved.
	// The Manager answers 503 with Retry-After.
	ErrBusy = errors.New("session: busy with other requests")
	// ErrReadOnly: a request wrapped in ReadOnly tried to change its
	// session. A programming error: 500.
	ErrReadOnly = errors.New("session: read-only request")
	// ErrNeedsExclusive: RenewID in a request wrapped in Optimistic, where
	// a concurrent write could be lost with the old id. A programming
	// error: 500.
	ErrNeedsExclusive = errors.New("session: needs exclusive access")
)

// StatusCode maps an error of this package to the HTTP status a response
// should carry: 503 when the store is full, failing or too slow, or the
// session busy past Options.LockWait; 409 when the session ended or changed
// under the request; 500 for values that cannot be encoded or are too large
// and for writes a request's access mode forbids (programming errors), and
// 500 for anything else. A 503 should carry Retry-After: the Manager's own
// error responses do.
func StatusCode(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrGone), errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrStoreFull), errors.Is(err, ErrStore), errors.Is(err, ErrBusy),
		errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// message returns the text of an error response, without internal detail.
func message(err error) string {
	switch {
	case errors.Is(err, ErrGone):
		return "your session ended while this request ran; its changes were not saved"
	case errors.Is(err, ErrConflict):
		return "your session was changed by another request while this one ran; its changes were not saved: try again"
	case errors.Is(err, ErrBusy):
		return "your session is busy with other requests; try again"
	case errors.Is(err, ErrStoreFull):
		return "the session store is full; try again later"
	case errors.Is(err, ErrStore), errors.Is(err, context.DeadlineExceeded):
		return "the session store is unavailable; try again later"
	}
	return "internal error: session could not be saved"
}
