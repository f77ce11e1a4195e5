package metrics

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetherlb/tether/balancer"
)

type source []*balancer.Balancer

func (s source) Balancers() []*balancer.Balancer { return s }

// scrape gathers reg into "name{k=v,...}" -> value (histograms: their
// sample count).
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			key := mf.GetName() + "{" + strings.Join(ls, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestObserveRequestCountsByOutcomeCodeAndError(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := New(Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	infos := []balancer.RequestInfo{
		{Balancer: "web", Member: "n1", Outcome: balancer.NewSession, Status: 200, Duration: time.Millisecond},
		{Balancer: "web", Member: "n1", Outcome: balancer.Sticky, Status: 200, Duration: time.Millisecond},
		{Balancer: "web", Member: "n1", Outcome: balancer.Sticky, Status: 304},
		{Balancer: "web", Member: "n2", Outcome: balancer.Failover, Status: 502, Err: fmt.Errorf("dial: %w", balancer.ErrConnect)},
		{Balancer: "web", Member: "", Outcome: balancer.Rejected, Status: 503, Err: balancer.ErrNoFailover},
		{Balancer: "web", Member: "n2", Outcome: balancer.Moved, Status: 0, Err: errors.New("client went away")},
		{Balancer: "api", Member: "n1", Outcome: balancer.Sticky, Status: 404},
		{Balancer: "api", Member: "n1", Outcome: balancer.NewSession, Status: 400, Err: fmt.Errorf("%w: invalid chunk size", balancer.ErrBadRequestBody)},
	}
	for _, i := range infos {
		c.ObserveRequest(i)
	}
	c.ObserveSession(balancer.SessionEvent{Balancer: "web", Member: "n1", Kind: balancer.SessionCreatedWhileDraining})
	c.ObserveSession(balancer.SessionEvent{Balancer: "web", Member: "n2", Kind: balancer.SessionRouteRewritten})
	got := scrape(t, reg)
	want := map[string]float64{
		"tether_requests_total{balancer=web,code=2xx,member=n1,outcome=new}":               1,
		"tether_requests_total{balancer=web,code=2xx,member=n1,outcome=sticky}":            1,
		"tether_requests_total{balancer=web,code=3xx,member=n1,outcome=sticky}":            1,
		"tether_requests_total{balancer=web,code=5xx,member=n2,outcome=failover}":          1,
		"tether_requests_total{balancer=web,code=5xx,member=,outcome=nofailover_rejected}": 1,
		"tether_requests_total{balancer=web,code=none,member=n2,outcome=moved}":            1,
		"tether_requests_total{balancer=api,code=4xx,member=n1,outcome=sticky}":            1,
		"tether_request_errors_total{balancer=web,member=n2,reason=connect}":               1,
		"tether_request_errors_total{balancer=web,member=,reason=nofailover}":              1,
		"tether_request_errors_total{balancer=web,member=n2,reason=other}":                 1,
		"tether_requests_total{balancer=api,code=4xx,member=n1,outcome=new}":               1,
		"tether_request_errors_total{balancer=api,member=n1,reason=bad_request_body}":      1,
		"tether_request_duration_seconds{balancer=web,member=n1}":                          3,
		"tether_request_duration_seconds{balancer=web,member=n2}":                          2,
		"tether_request_duration_seconds{balancer=web,member=}":                            1,
		"tether_request_duration_seconds{balancer=api,member=n1}":                          2,
		"tether_session_events_total{balancer=web,event=created_while_draining,member=n1}": 1,
		"tether_session_events_total{balancer=web,event=route_rewritten,member=n2}":        1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series %s = %v", k, got[k])
		}
	}
}

// backend is a member that creates a session on /login, expires it on
// /logout, and rewrites a foreign route to its own on /takeover (as a
// replicated node does).
func backend(t *testing.T, rt string) *url.URL {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			w.Header().Add("Set-Cookie", "JSESSIONID=id-"+rt+"-"+r.URL.RawQuery+"."+rt+"; Path=/")
		case "/logout":
			w.Header().Add("Set-Cookie", "JSESSIONID=; Path=/; Max-Age=0")
		case "/takeover":
			if c, err := r.Cookie("JSESSIONID"); err == nil {
				id, _, _ := strings.Cut(c.Value, ".")
				w.Header().Add("Set-Cookie", "JSESSIONID="+id+"."+rt+"; Path=/")
			}
		}
		io.WriteString(w, rt)
	}))
	t.Cleanup(s.Close)
	u, _ := url.Parse(s.URL)
	return u
}

// TestMetricsOfARealBalancer runs traffic through a real balancer and
// reads /metrics as Prometheus would.
func TestMetricsOfARealBalancer(t *testing.T) {
	reg := prometheus.NewRegistry()
	var bals source
	c, err := New(Options{Registerer: reg, Source: &bals})
	if err != nil {
		t.Fatal(err)
	}
	b, err := balancer.New(balancer.Options{
		Name: "web", Observer: c, Logger: slog.New(slog.DiscardHandler), NoFailover: true,
	}, []balancer.MemberConfig{
		{URL: backend(t, "n1"), Route: "n1"},
		{URL: backend(t, "n2"), Route: "n2", State: balancer.Draining},
		{URL: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Route: "gone", State: balancer.Stopped},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	bals = source{b}
	front := httptest.NewServer(b)
	t.Cleanup(front.Close)
	get := func(path, cookie string) int {
		r, _ := http.NewRequest("GET", front.URL+path, nil)
		if cookie != "" {
			r.Header.Set("Cookie", "JSESSIONID="+cookie)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	get("/login?a", "")                    // new session on n1 (n2 drains)
	get("/", "id-n1-a.n1")                 // sticky hit
	get("/logout", "id-n1-a.n1")           // sticky, expires the session
	get("/login?b", "old.n2")              // sticky to draining n2, which creates a session
	get("/takeover", "x.n2")               // sticky to n2, which keeps its own route: no rewrite
	if s := get("/", "y.gone"); s != 503 { // nofailover: rejected
		t.Fatalf("sticky request of a stopped member under nofailover: %d", s)
	}

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	for _, line := range []string{
		`tether_requests_total{balancer="web",code="2xx",member="n1",outcome="new"} 1`,
		`tether_requests_total{balancer="web",code="2xx",member="n1",outcome="sticky"} 2`,
		`tether_requests_total{balancer="web",code="2xx",member="n2",outcome="sticky"} 2`,
		`tether_requests_total{balancer="web",code="5xx",member="",outcome="nofailover_rejected"} 1`,
		`tether_request_errors_total{balancer="web",member="",reason="nofailover"} 1`,
		`tether_session_events_total{balancer="web",event="created",member="n1"} 1`,
		`tether_session_events_total{balancer="web",event="expired",member="n1"} 1`,
		`tether_session_events_total{balancer="web",event="created_while_draining",member="n2"} 1`,
		`tether_member_live_sessions{balancer="web",member="n2"} 2`,
		`tether_member_state{balancer="web",member="n2",state="draining"} 1`,
		`tether_member_state{balancer="web",member="n2",state="active"} 0`,
		`tether_member_up{balancer="web",member="n1"} 1`,
		`tether_member_weight{balancer="web",member="n1"} 1`,
		`tether_member_in_flight_requests{balancer="web",member="n1"} 0`,
		`tether_member_drain_remaining_sessions{balancer="web",member="n2"} 2`,
		`tether_balancer_tracked_sessions{balancer="web"} 2`,
		`tether_request_duration_seconds_count{balancer="web",member="n1"} 3`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("missing %s", line)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}

	// A removed member's series go away.
	b.Pool().SetState("n1", balancer.Stopped, "test")
	if _, err := b.Pool().Remove("n1"); err != nil {
		t.Fatal(err)
	}
	scrape(t, reg) // the scrape that notices the removal
	for k := range scrape(t, reg) {
		if strings.Contains(k, "member=n1") {
			t.Errorf("series of the removed member: %s", k)
		}
	}
}

func TestObserveRequestDoesNotAllocate(t *testing.T) {
	c, err := New(Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	info := balancer.RequestInfo{Balancer: "web", Member: "n1", Outcome: balancer.Sticky, Status: 200, Duration: 3 * time.Millisecond}
	fail := balancer.RequestInfo{Balancer: "web", Member: "n1", Outcome: balancer.Failover, Status: 502, Err: balancer.ErrConnect}
	c.ObserveRequest(info)
	c.ObserveRequest(fail)
	if n := testing.AllocsPerRun(1000, func() { c.ObserveRequest(info); c.ObserveRequest(fail) }); n != 0 {
		t.Errorf("ObserveRequest allocates %v times per call", n)
	}
}

func TestNewNeedsARegisterer(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a Registerer succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Registerer: reg}); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}
