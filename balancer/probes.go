package balancer

import "net/http"

// Probes are the endpoints orchestrators (Kubernetes, a cloud load
// balancer) poll on a listener. The Mux answers them itself, for any
// host, before routing: they are never proxied.
type Probes struct {
	// ReadyPath answers GET and HEAD with 200 while Ready reports true,
	// else 503 (while the process shuts down). Default "": none.
	ReadyPath string
	// LivePath answers GET and HEAD with 200 while the process serves.
	// Default "": none.
	LivePath string
	// Ready reports whether the process takes new traffic. Default: always.
	Ready func() bool
}

// The bodies of the probes' answers.
const (
	probeReady    = "ready\n"
	probeNotReady = "not ready: shutting down\n"
	probeLive     = "live\n"
)

// probe answers a request for a probe path: its status and body; ok is
// false for any other request.
func (m *Mux) probe(method, path string) (status int, body string, ok bool) {
	p := m.probes
	if p == nil || (method != http.MethodGet && method != http.MethodHead) {
		return 0, "", false
	}
	switch {
	case p.ReadyPath != "" && path == p.ReadyPath:
		if p.Ready == nil || p.Ready() {
			return http.StatusOK, probeReady, true
		}
		return http.StatusServiceUnavailable, probeNotReady, true
	case p.LivePath != "" && path == p.LivePath:
		return http.StatusOK, probeLive, true
	}
	return 0, "", false
}
