// Package metrics exports Tether's balancers to Prometheus. A Collector
// is the balancers' Observer (and SessionObserver): it counts requests,
// errors, latencies and session events as they happen, and at scrape time
// reads the members' gauges (in flight, live sessions, state, health,
// drain progress) from the balancers themselves.
//
// Metrics are registered on the Registerer given in Options; the package
// has no global registry.
package metrics

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherlb/tether/balancer"
)

// Source gives the collector the running balancers, for the gauges read
// at scrape time. internal/app's Server implements it.
type Source interface {
	Balancers() []*balancer.Balancer
}

// Options configures a Collector. Zero values mean the defaults given.
type Options struct {
	// Registerer receives the metrics. Required.
	Registerer prometheus.Registerer
	// Source, if set, gives the balancers whose member gauges are exported.
	Source Source
	// Buckets are the request latency histogram's upper bounds, in
	// seconds. Default DefaultBuckets.
	Buckets []float64
}

// DefaultBuckets cover a proxied request from a millisecond to the
// default response timeout (30s).
var DefaultBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Collector counts what the balancers observe. It implements
// balancer.Observer and balancer.SessionObserver, and is safe for
// concurrent use. ObserveRequest does not allocate once a member has been
// seen.
type Collector struct {
	requests *prometheus.CounterVec   // balancer, member, outcome, code
	errors   *prometheus.CounterVec   // balancer, member, reason
	duration *prometheus.HistogramVec // balancer, member
	sessions *prometheus.CounterVec   // balancer, member, event

	mu    sync.Mutex // serializes additions to table
	table atomic.Pointer[table]
}

var (
	_ balancer.Observer        = (*Collector)(nil)
	_ balancer.SessionObserver = (*Collector)(nil)
)

// table holds the pre-resolved series of every member seen, by balancer
// and route; it is replaced, never changed, when a member is added.
type table map[string]map[string]*series

// The label values of outcomes, status classes and error reasons, by
// index: a request's counters are found by indexing, not by building labels.
// An outcome's label is its name in the access log (Outcome.String).
var (
	outcomes      = outcomeLabels()
	codes         = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}
	errorReasons  = [...]string{"no_member", "nofailover", "timeout", "connect", "body_too_large", "uri_too_long", "bad_request_body", "other"}
	errorSentinel = [...]error{
		balancer.ErrNoMember, balancer.ErrNoFailover, balancer.ErrTimeout, balancer.ErrConnect,
		balancer.ErrBodyTooLarge, balancer.ErrURITooLong, balancer.ErrBadRequestBody,
	}
	sessionEvents = [...]string{
		balancer.SessionCreated: "created", balancer.SessionCreatedWhileDraining: "created_while_draining",
		balancer.SessionRouteRewritten: "route_rewritten", balancer.SessionExpired: "expired",
		balancer.SessionCookieInvalid: "cookie_invalid", balancer.SessionCookieExpired: "cookie_expired",
	}
)

// outcomeLabels returns the outcome label values, by Outcome.
func outcomeLabels() (l [balancer.OutcomeCount]string) {
	for i := range l {
		l[i] = balancer.Outcome(i).String()
	}
	return l
}

// series are one member's counters, resolved on first use.
type series struct {
	bal, member string
	duration    prometheus.Observer
	requests    [len(outcomes)][len(codes)]atomic.Pointer[counter]
	errors      [len(errorReasons)]atomic.Pointer[counter]
	sessions    [len(sessionEvents)]atomic.Pointer[counter]
}

type counter struct{ prometheus.Counter }

// New returns a Collector whose metrics are registered on o.Registerer.
func New(o Options) (*Collector, error) {
	if o.Registerer == nil {
		return nil, errors.New("metrics: Options.Registerer is required")
	}
	if o.Buckets == nil {
		o.Buckets = DefaultBuckets
	}
	c := &Collector{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_requests_total",
			Help: "Requests proxied, by member, routing outcome (new, sticky, failover, moved, nofailover_rejected) and status class.",
		}, []string{"balancer", "member", "outcome", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_request_errors_total",
			Help: "Requests the balancer answered itself with an error, by member tried and reason.",
		}, []string{"balancer", "member", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tether_request_duration_seconds",
			Help:    "Time from receiving a request to the end of its response, by member.",
			Buckets: o.Buckets,
		}, []string{"balancer", "member"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_session_events_total",
			Help: "Session events: created, created_while_draining, route_rewritten (a takeover or failover), expired (logout); in sticky mode insert, cookie_invalid (forged, altered or signed with a retired key) and cookie_expired (past max_idle or max_life), each counted as no cookie.",
		}, []string{"balancer", "member", "event"}),
	}
	c.table.Store(&table{})
	cs := []prometheus.Collector{c.requests, c.errors, c.duration, c.sessions}
	if o.Source != nil {
		cs = append(cs, &gauges{src: o.Source, forget: c.forget})
	}
	for _, x := range cs {
		if err := o.Registerer.Register(x); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// lookup returns the series of a member, creating them on first use.
func (c *Collector) lookup(bal, member string) *series {
	if s := (*c.table.Load())[bal][member]; s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.table.Load()
	if s := old[bal][member]; s != nil {
		return s
	}
	s := &series{bal: bal, member: member, duration: c.duration.WithLabelValues(bal, member)}
	next := make(table, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	ms := make(map[string]*series, len(old[bal])+1)
	for k, v := range old[bal] {
		ms[k] = v
	}
	ms[member] = s
	next[bal] = ms
	c.table.Store(&next)
	return s
}

// forget drops the series of members that are gone (removed at run time
// or by a reload). members is every balancer's current routes.
func (c *Collector) forget(members map[string]map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.table.Load()
	var next table
	for bal, ms := range old {
		for m := range ms {
			if m == "" || members[bal][m] {
				continue
			}
			if next == nil {
				next = make(table, len(old))
				for k, v := range old {
					next[k] = v
				}
			}
			if len(next[bal]) == len(old[bal]) {
				cp := make(map[string]*series, len(ms))
				for k, v := range ms {
					cp[k] = v
				}
				next[bal] = cp
			}
			delete(next[bal], m)
			labels := prometheus.Labels{"balancer": bal, "member": m}
			c.requests.DeletePartialMatch(labels)
			c.errors.DeletePartialMatch(labels)
			c.duration.DeletePartialMatch(labels)
			c.sessions.DeletePartialMatch(labels)
		}
	}
	if next != nil {
		c.table.Store(&next)
	}
}

// get returns the counter in slot p, resolving it with labels on first use.
func get(p *atomic.Pointer[counter], vec *prometheus.CounterVec, labels ...string) prometheus.Counter {
	if x := p.Load(); x != nil {
		return x.Counter
	}
	x := &counter{vec.WithLabelValues(labels...)}
	p.CompareAndSwap(nil, x) // WithLabelValues returns the same child: either is right
	return p.Load().Counter
}

// ObserveRequest counts a finished request. It implements balancer.Observer.
func (c *Collector) ObserveRequest(info balancer.RequestInfo) {
	s := c.lookup(info.Balancer, info.Member)
	o := int(info.Outcome)
	if o >= len(outcomes) {
		o = int(balancer.NewSession)
	}
	code := 0
	if info.Status >= 100 && info.Status < 600 {
		code = info.Status / 100
	}
	get(&s.requests[o][code], c.requests, s.bal, s.member, outcomes[o], codes[code]).Inc()
	s.duration.Observe(info.Duration.Seconds())
	if info.Err != nil {
		r := len(errorReasons) - 1
		for i, e := range errorSentinel {
			if errors.Is(info.Err, e) {
				r = i
				break
			}
		}
		get(&s.errors[r], c.errors, s.bal, s.member, errorReasons[r]).Inc()
	}
}

// ObserveSession counts a session event. It implements balancer.SessionObserver.
func (c *Collector) ObserveSession(ev balancer.SessionEvent) {
	k := int(ev.Kind)
	if k >= len(sessionEvents) {
		return
	}
	s := c.lookup(ev.Balancer, ev.Member)
	get(&s.sessions[k], c.sessions, s.bal, s.member, sessionEvents[k]).Inc()
}
