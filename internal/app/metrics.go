package app

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/metrics"
)

// MetricsTokenEnv is the environment variable holding the metrics
// listener's token when the file gives no metrics.token_file.
const MetricsTokenEnv = "TETHER_METRICS_TOKEN"

// telemetry is the metrics of a running configuration: the registry the
// balancers report to (through obs), served at the manager's /metrics and,
// with metrics.listen, on a listener of its own. A nil *telemetry is no
// metrics (neither a manager nor metrics.listen); its methods then do
// nothing.
type telemetry struct {
	reg     *prometheus.Registry
	obs     *metrics.Collector
	src     *serverSource
	handler http.Handler // the Prometheus text format of reg

	cfg    config.Metrics // zero without metrics.listen
	token  string         // "" for none
	allow  []netip.Prefix
	open   bool        // no token and a loopback listen: every request is served
	srv    *sideServer // nil without metrics.listen
	ln     net.Listener
	logger *slog.Logger
}

// newTelemetry builds the metrics cfg needs and reads the metrics
// listener's token; nil when cfg has neither a manager nor metrics.
func newTelemetry(cfg config.Config, o ServeOptions) (*telemetry, error) {
	if cfg.Manager == nil && cfg.Metrics == nil {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	src := &serverSource{}
	obs, err := metrics.New(metrics.Options{Registerer: reg, Source: src})
	if err != nil {
		return nil, err
	}
	t := &telemetry{reg: reg, obs: obs, src: src, logger: o.Logger,
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelError)})}
	if m := cfg.Metrics; m != nil {
		if err := t.access(*m, o.getenv); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// access reads the metrics listener's token (from metrics.token_file,
// else TETHER_METRICS_TOKEN through getenv) and networks, and refuses a
// listener that would serve anyone. Its error is a config.FieldError.
func (t *telemetry) access(m config.Metrics, getenv func(string) string) error {
	t.cfg = m
	if m.TokenFile != "" {
		tok, err := config.ReadSecret(m.TokenFile, "", nil)
		if err != nil {
			return config.FieldError{Field: "metrics.token_file", Msg: err.Error()}
		}
		t.token = tok
	} else {
		t.token = strings.TrimSpace(getenv(MetricsTokenEnv))
	}
	for i, a := range m.Allow {
		p, err := config.ParsePrefix(a)
		if err != nil {
			return config.FieldError{Field: fmt.Sprintf("metrics.allow[%d]", i), Msg: fmt.Sprintf("%q: %v", a, err)}
		}
		t.allow = append(t.allow, p)
	}
	loopback := config.IsLoopback(m.Listen)
	t.open = t.token == "" && loopback
	if t.token == "" && !loopback && len(t.allow) == 0 {
		return config.FieldError{Field: "metrics.listen", Msg: fmt.Sprintf("%s is not a loopback address: give metrics.token_file (or $%s) or metrics.allow, so that not everyone can read the metrics", m.Listen, MetricsTokenEnv)}
	}
	return nil
}

// start serves GET /metrics on metrics.listen, if the file gives one.
func (t *telemetry) start(srv *Server) error {
	if t == nil {
		return nil
	}
	t.src.p.Store(srv)
	if t.cfg.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", t.cfg.Listen)
	if err != nil {
		return fmt.Errorf("metrics: listen %s: %w", t.cfg.Listen, err)
	}
	t.ln = ln
	t.srv = startSide(ln, t, 10*time.Second, 8<<10, t.logger, "metrics listener")
	t.logger.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics",
		"token", t.token != "", "allow", t.cfg.Allow)
	return nil
}

// ServeHTTP serves GET /metrics to the sources in metrics.allow and to
// requests with the token (every request when open), and nothing else.
func (t *telemetry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/metrics" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !t.open && !t.allowed(r.RemoteAddr) {
		if t.token == "" {
			http.Error(w, "forbidden: this address is not in metrics.allow", http.StatusForbidden)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(t.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tether metrics"`)
			http.Error(w, "unauthorized: send the metrics token as Authorization: Bearer TOKEN", http.StatusUnauthorized)
			return
		}
	}
	t.handler.ServeHTTP(w, r)
}

// allowed reports whether remote ("ip:port") is in metrics.allow.
func (t *telemetry) allowed(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range t.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// reload warns that a changed metrics section waits for a restart: the
// listener, its token and networks stay as they started.
func (t *telemetry) reload(next config.Config, logger *slog.Logger) {
	var now, then config.Metrics
	if t != nil {
		now = t.cfg
	}
	if next.Metrics != nil {
		then = *next.Metrics
	}
	if !reflect.DeepEqual(now, then) {
		logger.Warn("a changed metrics section (listen, token_file, allow) takes effect at the next restart")
	}
}

// shutdown stops the metrics listener.
func (t *telemetry) shutdown(timeout time.Duration) {
	if t != nil {
		t.srv.stop(timeout)
	}
}
