package session

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/tetherlb/tether/route"
)

// Options configure a Manager. The zero value of every field but Store and
// Route is usable and means the default stated on the field.
type Options struct {
	// Store holds the sessions. Required.
	Store Store

	// Route is this node's route, the suffix of every session id it
	// issues (Tomcat's jvmRoute, the balancer member's route=). Required;
	// it must satisfy route.Valid.
	Route string

	// Separator separates the id part from the route. Zero means
	// route.DefaultSeparator ('.'). It must be one of . - _ ~ ! $ * + : @
	// and match the balancer's. Ids are URL-safe base64, or upper-case hex
	// when the separator is '-' or '_', so they never contain it.
	Separator byte

	// Cookie is the session cookie's policy.
	Cookie CookieOptions

	// IdleTimeout ends a session that no request used for this long.
	// Zero means 30 minutes (Tomcat's default); negative means never.
	IdleTimeout time.Duration

	// MaxLifetime ends a session this long after it was created, however
	// busy (absolute timeout; RenewID does not extend it). Zero means 12
	// hours; negative means never.
	MaxLifetime time.Duration

	// TouchInterval is the least time between two Touches of a session by
	// requests that change nothing, to spare the store a write per
	// request; the idle timeout is thus honoured within TouchInterval.
	// Zero means 1 second; negative means touch on every request.
	TouchInterval time.Duration

	// MaxValueBytes caps the encoded size of one value; Put fails with
	// ErrTooLarge above it. Zero means 64 KiB; negative means no cap.
	MaxValueBytes int

	// MaxSessionBytes caps the encoded size of a session's keys and values
	// together; Put fails with ErrTooLarge above it. Zero means 1 MiB;
	// negative means no cap.
	MaxSessionBytes int

	// IDBytes is how many random bytes make an id part. Zero means 16
	// (128 bits); it must be between 16 and 64.
	IDBytes int

	// Codec encodes values. Nil means JSON.
	Codec Codec

	// StoreTimeout bounds each store call. The calls get the request's
	// context without its cancellation, so that a client hanging up does
	// not abort a commit half-way. Zero or negative means no bound of the
	// Manager's own: a Store that does I/O bounds its own calls (a
	// replicated store its acknowledgements; memstore never waits). Set it
	// for a store that does not; it costs a timer per call.
	StoreTimeout time.Duration

	// LockWait bounds how long a request waits for the requests ahead of it
	// on the same session. Requests on one session run one after another
	// on this node, from their first access to the session until their
	// commit (the Exclusive access mode; see ReadOnly and Optimistic for
	// the others), so that the usual read-modify-write is safe. A request
	// that waited LockWait gives up with ErrBusy (503 with Retry-After);
	// it never runs without the lock. Zero means 10 seconds.
	LockWait time.Duration

	// LockHold bounds how long a request may keep its session locked while
	// other requests wait for it (counted from the first that waits). Past
	// it, the next request in line takes the lock, and the commit of the
	// request that held it fails with ErrConflict (409), so that a hung
	// handler cannot keep a session from being used. A request that
	// returns or panics releases the lock at once. Zero means 1 minute.
	LockHold time.Duration

	// StaleReads lets a read-only request (ReadOnly) whose session the
	// store cannot load, take over or confirm — a replicated store on a
	// node cut off from its cluster's majority — be served from the node's
	// last known copy of it (StaleLoader), marked stale: Session.Stale
	// reports it and the response carries the header "Tether-Stale: 1".
	// Default false: such a request fails with 503, as every request that
	// writes does whatever this option says.
	StaleReads bool

	// URLRewriting accepts the session id from a ";jsessionid=" path
	// parameter (PathParam) when the request has no session cookie, strips
	// the parameter before calling the handler, and makes Session.EncodeURL
	// add it for clients that did not send a cookie. Default false: ids in
	// URLs leak into access logs, Referer headers, bookmarks and shared
	// links, and make session fixation trivial. Enable it only for clients
	// that cannot keep cookies.
	URLRewriting bool

	// PathParam is the path parameter name for URLRewriting. Empty means
	// "jsessionid", as servlet containers and mod_proxy_balancer use.
	PathParam string

	// TrustedProxies are the addresses whose X-Forwarded-Proto header is
	// believed when deciding whether the request came over HTTPS (for
	// CookieOptions.Secure). Empty means none: only a TLS connection to this
	// server counts.
	TrustedProxies []netip.Prefix

	// OnCreate, if set, is called once per session, after the session is
	// first stored, on the request's goroutine.
	OnCreate func(Record)

	// OnDestroy, if set, is called once per session when it ends, on the
	// node that owns it: on the request's goroutine for Invalidate and for
	// expiry found at load, on the store's goroutine for expiry and
	// eviction found by the store. Record is the last state the reporter
	// knew. It must not block for long.
	OnDestroy func(Record, Reason)

	// ErrorHandler writes the response when the session cannot be committed
	// (the store failed or is full, the session ended under the request).
	// Nil means a plain-text response with StatusCode(err) and, for 503, a
	// Retry-After header.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// Observer receives events for metrics. Nil means none.
	Observer Observer

	// Logger logs store failures. Nil means no logging. Its lines do not
	// name Route: a logger shared by several nodes says which one with
	// Logger.With (as tether cart's does), once per line.
	Logger *slog.Logger

	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	// Rand is the source of id bytes. Nil means crypto/rand.Reader; replace
	// it only in tests.
	Rand io.Reader
}

// CookieOptions is the session cookie's policy.
type CookieOptions struct {
	// Name is the cookie name. Empty means "JSESSIONID", which Apache httpd
	// (stickysession=JSESSIONID), mod_jk and HAProxy setups expect.
	Name string
	// Path is the cookie path, used both to set and to expire the cookie.
	// Empty means "/".
	Path string
	// Domain is the cookie domain, used both to set and to expire the
	// cookie. Empty means a host-only cookie.
	Domain string
	// NoHTTPOnly drops the HttpOnly attribute so that page scripts can read
	// the cookie. Default false: HttpOnly is set.
	NoHTTPOnly bool
	// SameSite is the SameSite attribute. Zero means http.SameSiteLaxMode;
	// http.SameSiteNoneMode requires Secure not to be SecureNever.
	SameSite http.SameSite
	// Secure decides the Secure attribute. Zero means SecureAuto.
	Secure SecureMode
}

// SecureMode decides when the session cookie carries the Secure attribute.
type SecureMode uint8

const (
	// SecureAuto sets Secure when the request came over TLS, or from a
	// trusted proxy (Options.TrustedProxies) with X-Forwarded-Proto: https.
	SecureAuto SecureMode = iota
	// SecureAlways always sets Secure.
	SecureAlways
	// SecureNever never sets Secure.
	SecureNever
)

// defaults returns the value every zero field of Options takes.
func defaults() Options {
	return Options{
		Separator: route.DefaultSeparator, // "8F3A….n1", as Tomcat and httpd
		Cookie: CookieOptions{
			Name:     "JSESSIONID",         // what balancers look for
			Path:     "/",                  // the whole site
			SameSite: http.SameSiteLaxMode, // no cross-site POSTs with the cookie
		},
		IdleTimeout:     30 * time.Minute,              // Tomcat's session-timeout
		MaxLifetime:     12 * time.Hour,                // a working day, then log in again
		TouchInterval:   time.Second,                   // at most one Touch per session per second
		MaxValueBytes:   64 << 10,                      // one value: 64 KiB
		MaxSessionBytes: 1 << 20,                       // a whole session: 1 MiB
		IDBytes:         16,                            // 128 random bits
		Codec:           JSON{},                        // deterministic, fails on what it cannot store
		LockWait:        10 * time.Second,              // longer than a request should take, shorter than a balancer's timeout
		LockHold:        time.Minute,                   // a handler stuck longer is hung
		PathParam:       "jsessionid",                  // the servlet name
		Logger:          slog.New(slog.DiscardHandler), // quiet unless asked
		Now:             time.Now,                      // the wall clock
		Rand:            rand.Reader,                   // ids must be unguessable
	}
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	d := defaults()
	if o.Separator == 0 {
		o.Separator = d.Separator
	}
	if o.Cookie.Name == "" {
		o.Cookie.Name = d.Cookie.Name
	}
	if o.Cookie.Path == "" {
		o.Cookie.Path = d.Cookie.Path
	}
	if o.Cookie.SameSite == 0 {
		o.Cookie.SameSite = d.Cookie.SameSite
	}
	o.IdleTimeout = orDuration(o.IdleTimeout, d.IdleTimeout)
	o.MaxLifetime = orDuration(o.MaxLifetime, d.MaxLifetime)
	o.TouchInterval = orDuration(o.TouchInterval, d.TouchInterval)
	o.MaxValueBytes = orInt(o.MaxValueBytes, d.MaxValueBytes)
	o.MaxSessionBytes = orInt(o.MaxSessionBytes, d.MaxSessionBytes)
	o.IDBytes = orInt(o.IDBytes, d.IDBytes)
	o.LockWait = orDuration(o.LockWait, d.LockWait)
	o.LockHold = orDuration(o.LockHold, d.LockHold)
	if o.Codec == nil {
		o.Codec = d.Codec
	}
	if o.PathParam == "" {
		o.PathParam = d.PathParam
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	if o.Rand == nil {
		o.Rand = d.Rand
	}
	return o
}

func orDuration(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

func orInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// separators are the bytes Options.Separator may be: safe in a cookie value
// and in a URL path parameter, and not ';', ',' or '='.
const separators = ".-_~!$*+:@"

// Validate reports every mistake in o, joined, without changing it. New
// calls it; a configuration loader can call it early.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("session: "+format, args...))
	}
	if o.Store == nil {
		bad("Options.Store is required")
	}
	if !route.Valid(o.Route) {
		bad("Options.Route %q: want 1 to %d letters, digits, '-', '_' or '.'", o.Route, route.MaxLen)
	}
	if o.Separator != 0 && !strings.ContainsRune(separators, rune(o.Separator)) {
		bad("Options.Separator %q: want one of %s", o.Separator, separators)
	}
	if o.Cookie.Name != "" && !route.ValidName(o.Cookie.Name) {
		bad("Cookie.Name %q: not a valid cookie name", o.Cookie.Name)
	}
	if o.Cookie.Path != "" && (o.Cookie.Path[0] != '/' || !isCookieAttr(o.Cookie.Path)) {
		bad("Cookie.Path %q: want an absolute path without ';' or control characters", o.Cookie.Path)
	}
	if o.Cookie.Domain != "" && !isCookieAttr(o.Cookie.Domain) {
		bad("Cookie.Domain %q: contains ';' or control characters", o.Cookie.Domain)
	}
	if o.Cookie.SameSite < 0 || o.Cookie.SameSite > http.SameSiteNoneMode {
		bad("Cookie.SameSite %d: unknown mode", o.Cookie.SameSite)
	}
	if o.Cookie.Secure > SecureNever {
		bad("Cookie.Secure %d: unknown mode", o.Cookie.Secure)
	}
	if o.Cookie.SameSite == http.SameSiteNoneMode && o.Cookie.Secure == SecureNever {
		bad("Cookie.SameSite None requires Secure: browsers reject the cookie otherwise")
	}
	if o.IDBytes != 0 && (o.IDBytes < 16 || o.IDBytes > 64) {
		bad("Options.IDBytes %d: want 16 to 64 (at least 128 random bits)", o.IDBytes)
	}
	if o.LockWait < 0 {
		bad("Options.LockWait %v: must not be negative (a request never waits without bound)", o.LockWait)
	}
	if o.LockHold < 0 {
		bad("Options.LockHold %v: must not be negative (a hung request must not keep its session)", o.LockHold)
	}
	if o.PathParam != "" && !route.ValidName(o.PathParam) {
		bad("Options.PathParam %q: not a valid parameter name", o.PathParam)
	}
	d := o.withDefaults()
	if d.IdleTimeout > 0 && d.TouchInterval >= d.IdleTimeout {
		bad("Options.TouchInterval %v: must be shorter than IdleTimeout %v", d.TouchInterval, d.IdleTimeout)
	}
	if d.MaxValueBytes > 0 && d.MaxSessionBytes > 0 && d.MaxValueBytes > d.MaxSessionBytes {
		bad("Options.MaxValueBytes %d exceeds MaxSessionBytes %d", d.MaxValueBytes, d.MaxSessionBytes)
	}
	for _, p := range o.TrustedProxies {
		if !p.IsValid() {
			bad("Options.TrustedProxies: invalid prefix %v", p)
		}
	}
	return errors.Join(errs...)
}

// isCookieAttr reports whether s can be a cookie attribute value.
func isCookieAttr(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == ';' {
			return false
		}
	}
	return true
}
