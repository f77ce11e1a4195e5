// Package health decides whether balancer members are up. Active checks
// request a path on each member at an interval, with rise and fall
// thresholds. Passive checks are the balancer's: when real traffic fails it
// calls MarkDown, and the checker probes the member until one probe
// succeeds, at which point the member is up again at once.
//
// The checker drives members through Target, a small interface the
// balancer's members implement; it knows nothing else about them.
package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Target is a member as the checker sees it.
type Target interface {
	// HealthURL is the member's base URL; checks go to its host.
	HealthURL() *url.URL
	// SetHealthy records the checker's verdict. It must not block.
	SetHealthy(up bool)
}

// Announcer is an optional interface of a Target: a member that can ask,
// in its health check answer, to be drained. The checker calls Announce
// after each active check with the member's announcement.
type Announcer interface {
	Announce(draining bool)
}

// Pinger is an optional interface of a Target with a liveness check of
// its own protocol (AJP's CPing/CPong). Without a Path, probes use it
// instead of a TCP connect, unless it returns errors.ErrUnsupported.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Transporter is an optional interface of a Target reached by a protocol
// of its own (AJP): HealthTransport returns the http.RoundTripper its
// checks go through, or nil for the checker's own.
type Transporter interface {
	HealthTransport() http.RoundTripper
}

// StateHeader is the response header of a health check in which a member
// announces it is draining: "Tether-State: draining" (take no new sessions;
// it may come with status 503, which then does not count as a failure).
// A healthy answer without it means "active".
const StateHeader = "Tether-State"

// Options configures a Checker. The zero value runs passive probing only,
// with the defaults below.
type Options struct {
	// Path, when set, enables active checks: GET Path on every member every
	// Interval (through the Target's own transport if it is a Transporter);
	// a 2xx or 3xx answer is a success. Probes of members taken down by
	// MarkDown also use it. Default "": no active checks, and probes are
	// TCP connects, or the Target's Ping if it is a Pinger.
	Path string
	// Interval between active checks. Default 2s.
	Interval time.Duration
	// Timeout of one check or probe. Default 1s.
	Timeout time.Duration
	// Rise is how many active successes in a row bring a member up. Default 2.
	Rise int
	// Fall is how many active failures in a row take a member down. Default 2.
	Fall int
	// ProbeInterval is how often a member taken down by MarkDown is probed.
	// Default 1s.
	ProbeInterval time.Duration
	// Dial, if set, connects to an http target at addr ("host:port"), for
	// checks and probes. Default nil: a plain TCP connection.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// DialTLS, if set, connects to an https target at addr ("host:port")
	// and completes the TLS handshake: checks and probes of https targets
	// then use it, so that they verify certificates exactly as the
	// traffic does (a member whose certificate fails is down, not up in
	// the checks and failing in traffic). Default nil: TLS with the
	// system's roots and the target's host name.
	DialTLS func(ctx context.Context, addr string) (net.Conn, error)
	// Transport sends the checks. Default: a transport of its own that does
	// not keep connections alive and dials https targets with DialTLS.
	Transport http.RoundTripper
	// Logger receives state changes. Default: slog.Default().
	Logger *slog.Logger
	// OnChange, if set, is called after each change of a member's health,
	// with the reason. It must not block.
	OnChange func(t Target, up bool, reason string)
}

func (o Options) withDefaults() Options {
	d := Options{
		Interval:      2 * time.Second, // as HAProxy's inter
		Timeout:       time.Second,     // a check slower than this is a failure
		Rise:          2,               // as HAProxy's rise
		Fall:          2,               // as HAProxy's fall (its default is 3)
		ProbeInterval: time.Second,     // a member taken down by traffic is back within this
		Logger:        slog.Default(),
	}
	if o.Interval > 0 {
		d.Interval = o.Interval
	}
	if o.Timeout > 0 {
		d.Timeout = o.Timeout
	}
	if o.Rise > 0 {
		d.Rise = o.Rise
	}
	if o.Fall > 0 {
		d.Fall = o.Fall
	}
	if o.ProbeInterval > 0 {
		d.ProbeInterval = o.ProbeInterval
	}
	if o.Logger != nil {
		d.Logger = o.Logger
	}
	d.Path, d.OnChange = o.Path, o.OnChange
	d.Dial, d.DialTLS = o.Dial, o.DialTLS
	if d.Dial == nil {
		d.Dial = dialTCP
	}
	if d.DialTLS == nil {
		d.DialTLS = dialTLS
	}
	d.Transport = o.Transport
	if d.Transport == nil {
		d.Transport = &http.Transport{
			DisableKeepAlives: true,
			DialContext:       func(ctx context.Context, _, addr string) (net.Conn, error) { return d.Dial(ctx, addr) },
			DialTLSContext:    func(ctx context.Context, _, addr string) (net.Conn, error) { return d.DialTLS(ctx, addr) },
			Proxy:             nil,
		}
	}
	return d
}

// Checker watches members. Its methods are safe for concurrent use.
type Checker struct {
	opts   Options
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	watched map[Target]*watch
}

type watch struct {
	t      Target
	kick   chan struct{} // MarkDown wakes the loop
	cancel context.CancelFunc
	mu     sync.Mutex
	up     bool
	probe  bool // down because of MarkDown: come back on the first success
	streak int  // active successes (when down) or failures (when up) in a row
	gen    int  // bumped by MarkDown: a check started before it is stale
}

// New returns a Checker. Call Close to stop it.
func New(opts Options) *Checker {
	o := opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Checker{
		opts:    o,
		client:  &http.Client{Transport: o.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		ctx:     ctx,
		cancel:  cancel,
		watched: map[Target]*watch{},
	}
}

// Watch starts checking t, which is taken to be up.
func (c *Checker) Watch(t Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.watched[t]; ok || c.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	w := &watch{t: t, kick: make(chan struct{}, 1), cancel: cancel, up: true}
	c.watched[t] = w
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.loop(ctx, w)
	}()
}

// Unwatch stops checking t.
func (c *Checker) Unwatch(t Target) {
	c.mu.Lock()
	w := c.watched[t]
	delete(c.watched, t)
	c.mu.Unlock()
	if w != nil {
		w.cancel()
	}
}

// MarkDown takes t down at once because real traffic failed, and probes
// it every ProbeInterval until a probe succeeds.
func (c *Checker) MarkDown(t Target, reason string) {
	c.mu.Lock()
	w := c.watched[t]
	c.mu.Unlock()
	if w == nil {
		return
	}
	w.mu.Lock()
	changed := w.up
	w.up, w.probe, w.streak = false, true, 0
	w.gen++
	w.mu.Unlock()
	if changed {
		c.changed(w, false, reason)
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Close stops every check and waits for them to end.
func (c *Checker) Close() {
	c.cancel()
	c.wg.Wait()
}

func (c *Checker) loop(ctx context.Context, w *watch) {
	active := c.opts.Path != ""
	timer := time.NewTimer(c.opts.Interval)
	defer timer.Stop()
	for {
		w.mu.Lock()
		probing, gen := w.probe, w.gen
		w.mu.Unlock()
		wait := c.opts.Interval
		if probing {
			wait = c.opts.ProbeInterval
		}
		if active || probing {
			timer.Reset(wait)
		} else {
			timer.Stop() // passive only and up: nothing to do until MarkDown
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
			continue // re-read the state: now probing
		case <-timer.C:
		}
		announced, err := c.check(ctx, w.t)
		if ctx.Err() != nil {
			return
		}
		c.record(w, gen, err)
		if a, ok := w.t.(Announcer); ok && err == nil && announced != "" {
			a.Announce(announced == "draining")
		}
	}
}

// record applies one check's outcome with the rise and fall thresholds.
func (c *Checker) record(w *watch, gen int, err error) {
	w.mu.Lock()
	if gen != w.gen {
		w.mu.Unlock()
		return // traffic failed while this check ran: its verdict is stale
	}
	var changed, up bool
	var reason string
	switch {
	case err == nil && w.probe:
		w.up, w.probe, w.streak = true, false, 0
		changed, up, reason = true, true, "probe succeeded"
	case err == nil && !w.up:
		w.streak++
		if w.streak >= c.opts.Rise {
			w.up, w.streak = true, 0
			changed, up, reason = true, true, fmt.Sprintf("%d checks succeeded", c.opts.Rise)
		}
	case err == nil:
		w.streak = 0
	case w.up:
		w.streak++
		if w.streak >= c.opts.Fall {
			w.up, w.streak = false, 0
			changed, reason = true, fmt.Sprintf("%d checks failed, last: %v", c.opts.Fall, err)
		}
	default:
		w.streak = 0
	}
	w.mu.Unlock()
	if changed {
		c.changed(w, up, reason)
	}
}

func (c *Checker) changed(w *watch, up bool, reason string) {
	w.t.SetHealthy(up)
	state := "down"
	if up {
		state = "up"
	}
	c.opts.Logger.Info("member health changed", "member", w.t.HealthURL().String(), "state", state, "reason", reason)
	if c.opts.OnChange != nil {
		c.opts.OnChange(w.t, up, reason)
	}
}

// check runs one active check or probe of t. It returns the state the
// member announced ("draining", "active" or "").
func (c *Checker) check(ctx context.Context, t Target) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	base := t.HealthURL()
	if c.opts.Path == "" {
		if p, ok := t.(Pinger); ok {
			if err := p.Ping(ctx); !errors.Is(err, errors.ErrUnsupported) {
				return "", err
			}
		}
		conn, err := c.connect(ctx, base)
		if err != nil {
			return "", err
		}
		return "", conn.Close()
	}
	u := *base
	u.Path, u.RawPath, u.RawQuery = c.opts.Path, "", ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "tether-health-check")
	client := c.client
	if tr, ok := t.(Transporter); ok {
		if rt := tr.HealthTransport(); rt != nil {
			cl := *client
			cl.Transport = rt
			client = &cl
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	// A healthy answer without the header is "active": a member that
	// announced a drain and restarted takes new sessions again.
	announced := "active"
	if strings.EqualFold(strings.TrimSpace(resp.Header.Get(StateHeader)), "draining") {
		announced = "draining"
	}
	if announced == "draining" && resp.StatusCode == http.StatusServiceUnavailable {
		return announced, nil // up, but asking for no new sessions
	}
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return "", fmt.Errorf("GET %s: status %d", c.opts.Path, resp.StatusCode)
	}
	return announced, nil
}

// connect opens a connection to base, as a probe without a health path:
// TCP, and for an https target the TLS handshake too.
func (c *Checker) connect(ctx context.Context, base *url.URL) (net.Conn, error) {
	if base.Scheme == "https" {
		return c.opts.DialTLS(ctx, hostPort(base))
	}
	return c.opts.Dial(ctx, hostPort(base))
}

// dialTCP is the default Dial.
func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// dialTLS is the default DialTLS: the system's roots, the host as the
// server name.
func dialTLS(ctx context.Context, addr string) (net.Conn, error) {
	host, _, _ := net.SplitHostPort(addr)
	d := tls.Dialer{Config: &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}}
	return d.DialContext(ctx, "tcp", addr)
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}
