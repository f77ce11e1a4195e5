package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/tetherlb/tether/balancer"
)

// Errors of the API, each answered with the status errorStatus gives it.
var (
	// ErrUnauthorized: no token, or not a token of this manager.
	ErrUnauthorized = errors.New("a valid token is required: send it as Authorization: Bearer TOKEN")
	// ErrReadOnly: the read-only token cannot change anything.
	ErrReadOnly = errors.New("the read-only token cannot change anything")
	// ErrCrossOrigin: a browser sent a change from another origin.
	ErrCrossOrigin = errors.New("cross-origin change refused: the request's Origin is not the manager's own nor in manager.allowed_origins")
	// ErrNoSuchBalancer: no balancer has that name.
	ErrNoSuchBalancer = errors.New("no such balancer")
	// ErrBadRequest: the request body or a parameter is malformed.
	ErrBadRequest = errors.New("bad request")
	// ErrMediaType: a body that is not JSON.
	ErrMediaType = errors.New("the body must be JSON: send Content-Type: application/json")
	// ErrTooLarge: a body over the limit.
	ErrTooLarge = errors.New("request body too large")
	// ErrConflict: the change contradicts the member's current state (for
	// example, removing a member that still takes traffic).
	ErrConflict = errors.New("conflict")
	// ErrNotFound: no such API path.
	ErrNotFound = errors.New("no such API path")
	// ErrMethod: the path does not take that method.
	ErrMethod = errors.New("method not allowed")
)

// errorStatus maps an error to the status the client gets. It is the one
// place where the manager's errors become HTTP statuses.
func errorStatus(err error) int {
	var fe *FieldError
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrReadOnly), errors.Is(err, ErrCrossOrigin):
		return http.StatusForbidden
	case errors.Is(err, ErrNoSuchBalancer), errors.Is(err, balancer.ErrNoSuchMember), errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrTooLarge), errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, balancer.ErrExists), errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.As(err, &fe), errors.Is(err, balancer.ErrInvalid), errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// errorBody is every error answer: {"error": "...", "field": "..."}.
type errorBody struct {
	Error string `json:"error"`
	// Field names the invalid field of the request, when there is one.
	Field string `json:"field,omitempty"`
}

// writeError answers with err as JSON and its status.
func writeError(w http.ResponseWriter, err error) {
	status := errorStatus(err)
	body := errorBody{Error: err.Error()}
	var fe *FieldError
	if errors.As(err, &fe) {
		body.Field = fe.Field
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		body.Error = fmt.Sprintf("%v: at most %d bytes", ErrTooLarge, mbe.Limit)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tether manager"`)
	}
	writeJSON(w, status, body)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}
