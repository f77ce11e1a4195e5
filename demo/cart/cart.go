// Package cart is the example shopping-cart app of `tether cart`: one node of
// a web app keeping a cart in a tether session, built only on the public
// API of package session, so that it works over any session.Store (in
// memory, or replicated by a cluster).
//
// Its HTTP interface is a stable contract (docs/architecture.md, "Stable interfaces"):
//
//	GET  /api/cart        {"node": "n1", "session": "<id>.<route>" or "", "items": [...]}; creates no session;
//	                      with Options.StaleReads, "stale": true when the node served its unconfirmed copy
//	POST /api/cart/items  form field or JSON key "item": adds it, creating the session if needed; the cart
//	POST /api/logout      ends the session, expires the cookie, creates none; the (empty) cart
//	GET  /healthz         200 when ready to serve, 503 while not (a store still receiving state);
//	                      503 with "Tether-State: draining" once the node drains (App.Drain)
//	GET  /                the cart as an HTML page, with an add form and a logout button
//
// An error answer is JSON {"error": "..."}. 409 (the session changed or
// ended during the request) and 422 (the cart already holds MaxItems
// items) mean nothing was saved; 503 with Retry-After (the store failing,
// a takeover lost, no majority) that the change may or may not have been
// saved: a later read tells.
//
// The HTML page's forms post to POST /add and POST /logout, which redirect
// back to / (303). With a replicated store, GET /cluster shows the cluster
// as this node sees it and GET /cluster/sessions/{id} this node's copy of
// one session (Options.Cluster, Options.SessionCopy).
package cart

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tetherlb/tether/route"
	"github.com/tetherlb/tether/session"
)

// Limits on what a cart holds.
const (
	MaxItems    = 100     // items in one cart
	MaxItemLen  = 64      // characters in one item
	maxBodySize = 8 << 10 // bytes in a request body
)

// Options configure an App. Every field but Store and Route may be left
// zero, meaning the default it states.
type Options struct {
	// Route is this node's route: the suffix of its session ids and the
	// "node" the API reports. Required.
	Route string
	// Store holds the sessions. Required: a memstore for a lone node, a
	// replicated store for a cluster. The caller closes it after Serve.
	Store session.Store
	// Ready, if set, is asked by /healthz besides the store's own
	// readiness (session.Readier); non-nil means 503.
	Ready func() error
	// IdleTimeout is the sessions' idle timeout. Zero means the session
	// package's default (30 minutes).
	IdleTimeout time.Duration
	// StaleReads serves GET /api/cart and GET / from this node's last known
	// copy of the cart when the store cannot confirm it (a node cut off
	// from its cluster's majority), with "stale": true in the JSON and the
	// "Tether-Stale: 1" header (session.Options.StaleReads). Default
	// false: 503.
	StaleReads bool
	// TrustedProxies are the proxies whose X-Forwarded-Proto decides the
	// cookie's Secure attribute. Empty means none.
	TrustedProxies []netip.Prefix
	// Cluster, if set, returns the replication cluster as this node sees
	// it (members, their state, sessions held, replication lag), served as
	// JSON by GET /cluster. Nil means no /cluster (404).
	Cluster func() any
	// SessionCopy, if set, returns this node's copy of the session with id
	// part id, without its values (owner, epoch, version, a digest), served
	// as JSON by GET /cluster/sessions/{id}; an error wrapping
	// session.ErrNotFound is a 404. Nil means no such endpoint.
	SessionCopy func(id string) (any, error)
	// DemoToken, if set, adds the panel of `tether demo` to the HTML page:
	// buttons that kill, drain and restart nodes through the demo's control
	// API at /demo/api/ (same origin, behind the balancer), which needs this
	// token. Empty means no panel.
	DemoToken string
	// Observer receives the session events, for metrics. Nil means none.
	Observer session.Observer
	// Metrics, when set, serves GET /metrics (Prometheus text format).
	Metrics http.Handler
	// Logger logs errors. Nil means no logging.
	Logger *slog.Logger
}

// App is one cart node: an http.Handler.
type App struct {
	o        Options
	m        *session.Manager
	h        http.Handler
	tmpl     *template.Template
	log      *slog.Logger
	draining atomic.Bool
}

// New returns the cart app for o.
func New(o Options) (*App, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := session.New(session.Options{
		Store:          o.Store,
		Route:          o.Route,
		IdleTimeout:    o.IdleTimeout,
		StaleReads:     o.StaleReads,
		TrustedProxies: o.TrustedProxies,
		Observer:       o.Observer,
		Logger:         o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("cart: %w", err)
	}
	tmpl, err := parsePage()
	if err != nil {
		return nil, fmt.Errorf("cart: page template: %w", err)
	}
	a := &App{o: o, m: m, tmpl: tmpl, log: o.Logger}
	mux := http.NewServeMux()
	// Pages and GETs only read the session: they do not wait for adds in
	// flight on it (session.ReadOnly). Adds and logouts run one after
	// another per session, so that parallel adds (tabs, double clicks)
	// each keep their item, with no lock of the app's own.
	mux.Handle("GET /{$}", session.ReadOnly(http.HandlerFunc(a.page)))
	mux.HandleFunc("POST /add", a.addForm)
	mux.HandleFunc("POST /logout", a.logoutForm)
	mux.Handle("GET /api/cart", session.ReadOnly(http.HandlerFunc(a.getCart)))
	mux.HandleFunc("POST /api/cart/items", a.addItem)
	mux.HandleFunc("POST /api/logout", a.logout)
	mux.HandleFunc("GET /healthz", a.healthz)
	if o.DemoToken != "" {
		mux.HandleFunc("GET /demo-panel.js", a.panelScript)
	}
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	if o.Cluster != nil {
		mux.HandleFunc("GET /cluster", a.cluster)
	}
	if o.SessionCopy != nil {
		mux.HandleFunc("GET /cluster/sessions/{id}", a.sessionCopy)
	}
	a.h = m.Handler(mux)
	return a, nil
}

// ServeHTTP serves the cart.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.h.ServeHTTP(w, r) }

// Manager returns the app's session Manager.
func (a *App) Manager() *session.Manager { return a.m }

// Cart is the JSON form of a cart.
type Cart struct {
	Node    string   `json:"node"`
	Session string   `json:"session"`
	Items   []string `json:"items"`
	// Stale is set when the cart is this node's last known copy, which it
	// could not confirm (Options.StaleReads).
	Stale bool `json:"stale,omitempty"`
}

// stored is what the session holds under "cart".
type stored struct {
	Items []string `json:"items"`
}

// load returns the request's cart; it creates nothing.
func (a *App) load(s *session.Session) (Cart, error) {
	c := Cart{Node: a.o.Route, Items: []string{}}
	st, err := session.Get[*stored](s, "cart")
	if err != nil {
		return c, err
	}
	if st != nil {
		c.Items = append(c.Items, st.Items...)
	}
	if c.Stale, err = s.Stale(); err != nil {
		return c, err
	}
	c.Session, err = s.ID()
	return c, err
}

// add adds item to the request's cart, creating the session if needed.
func (a *App) add(s *session.Session, item string) error {
	st, err := session.Get[*stored](s, "cart")
	if err != nil {
		return err
	}
	if st == nil {
		st = &stored{}
		if err := s.Put("cart", st); err != nil {
			return err
		}
	}
	if len(st.Items) >= MaxItems {
		return errCartFull
	}
	// Changed in place: the session saves it at commit without another Put.
	st.Items = append(st.Items, item)
	return nil
}

var errCartFull = fmt.Errorf("the cart is full (%d items)", MaxItems)

func (a *App) getCart(w http.ResponseWriter, r *http.Request) {
	c, err := a.load(session.From(r))
	if err != nil {
		a.sessionError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (a *App) addItem(w http.ResponseWriter, r *http.Request) {
	item, status, err := readItem(w, r)
	if err != nil {
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	s := session.From(r)
	if err := a.add(s, item); err != nil {
		a.sessionError(w, err)
		return
	}
	c, err := a.load(s)
	if err != nil {
		a.sessionError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if err := session.From(r).Invalidate(); err != nil {
		a.sessionError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Cart{Node: a.o.Route, Items: []string{}})
}

// StateHeader is the health check response header by which a node asks
// balancers to drain it: "Tether-State: draining" (docs/operations.md, the
// health check contract).
const StateHeader = "Tether-State"

// Drain makes /healthz announce that the node is draining: 503 with
// "Tether-State: draining". Tether's balancer then sends it no new
// sessions and, with sessions: replicated, moves its sessions' requests
// to other nodes, which take them over; a balancer that only looks at
// the status takes the node out of rotation, with the same effect. The
// node keeps serving every request it receives. Drain cannot be undone:
// it is the first step of a shutdown.
func (a *App) Drain() { a.draining.Store(true) }

// Draining reports whether Drain was called.
func (a *App) Draining() bool { return a.draining.Load() }

func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if a.draining.Load() {
		w.Header().Set(StateHeader, "draining")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining", "node": a.o.Route})
		return
	}
	err := a.m.Ready()
	if err == nil && a.o.Ready != nil {
		err = a.o.Ready()
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "node": a.o.Route, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": a.o.Route})
}

func (a *App) cluster(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, a.o.Cluster())
}

// sessionCopy shows this node's copy of a session; {id} may be the id part
// or the whole "<id>.<route>".
func (a *App) sessionCopy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if i, _, ok := route.Split(id, route.DefaultSeparator); ok {
		id = i
	}
	w.Header().Set("Cache-Control", "no-store")
	c, err := a.o.SessionCopy(id)
	switch {
	case errors.Is(err, session.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "this node has no live copy of the session"})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, c)
	}
}

// sessionError answers a request whose session failed.
func (a *App) sessionError(w http.ResponseWriter, err error) {
	status := session.StatusCode(err)
	switch {
	case errors.Is(err, errCartFull):
		status = http.StatusUnprocessableEntity
	case status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1") // busy, or the store failing: try again
		a.log.Warn("cart: session", "err", err)
	case status >= 500:
		a.log.Error("cart: session", "err", err)
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// readItem reads the "item" of a form or JSON body and checks it. The
// status is the one to answer with on error.
func readItem(w http.ResponseWriter, r *http.Request) (string, int, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodySize)
	var item string
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var in struct {
			Item *string `json:"item"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			return "", bodyStatus(err), fmt.Errorf("invalid JSON body: %w", err)
		}
		if in.Item == nil {
			return "", http.StatusBadRequest, errors.New(`missing "item"`)
		}
		item = *in.Item
	case "application/x-www-form-urlencoded", "multipart/form-data":
		// ParseMultipartForm loses ParseForm's errors on urlencoded bodies.
		parse := r.ParseForm
		if ct == "multipart/form-data" {
			parse = func() error { return r.ParseMultipartForm(maxBodySize) }
		}
		if err := parse(); err != nil {
			return "", bodyStatus(err), fmt.Errorf("invalid form: %w", err)
		}
		if _, ok := r.PostForm["item"]; !ok {
			return "", http.StatusBadRequest, errors.New(`missing form field "item"`)
		}
		item = r.PostForm.Get("item")
	default:
		return "", http.StatusUnsupportedMediaType, fmt.Errorf("content type %q: want a form or application/json", ct)
	}
	item, err := checkItem(item)
	if err != nil {
		return "", http.StatusBadRequest, err
	}
	return item, 0, nil
}

func bodyStatus(err error) int {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// checkItem trims item and checks it is a sensible item name.
func checkItem(item string) (string, error) {
	item = strings.TrimSpace(item)
	switch {
	case item == "":
		return "", errors.New("item is empty")
	case !utf8.ValidString(item):
		return "", errors.New("item is not valid UTF-8")
	case utf8.RuneCountInString(item) > MaxItemLen:
		return "", fmt.Errorf("item is longer than %d characters", MaxItemLen)
	case strings.IndexFunc(item, unicode.IsControl) >= 0:
		return "", errors.New("item contains control characters")
	}
	return item, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}
