package config

import "fmt"

// Metrics is a listener of its own that serves only GET /metrics (the
// Prometheus text format, the same metrics as the manager's /metrics), so
// that a scraper needs neither the manager nor its token.
//
// A request is served when its source address is in Allow, or when it
// carries the metrics token as "Authorization: Bearer TOKEN"; with no
// token (neither TokenFile nor the TETHER_METRICS_TOKEN environment
// variable) and a loopback Listen, every request is served. A Listen that
// is not loopback needs a token or Allow.
type Metrics struct {
	// Listen is the listener's address, like "0.0.0.0:9090". Required.
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token (surrounding white space ignored).
	// Default: the TETHER_METRICS_TOKEN environment variable, else none.
	TokenFile string `yaml:"token_file"`
	// Allow lists the IPs and CIDR prefixes whose requests need no token
	// (a Prometheus on the private network). Default: none.
	Allow []string `yaml:"allow"`
}

// metrics checks the metrics listener; the token itself (from its file
// or the environment) is read at start.
func (v *checker) metrics(c *Config) {
	m := c.Metrics
	if m == nil {
		return
	}
	v.listen("metrics.listen", m.Listen)
	if m.TokenFile != "" && v.file("metrics.token_file", m.TokenFile, "") {
		v.secretFile("metrics.token_file", m.TokenFile)
	}
	for i, a := range m.Allow {
		if _, err := ParsePrefix(a); err != nil {
			v.add(fmt.Sprintf("metrics.allow[%d]", i), "%q is not an IP address or CIDR prefix", a)
		}
	}
	if c.Manager != nil && m.Listen != "" {
		addr := c.Manager.Listen
		if addr == "" {
			addr = DefaultManagerListen
		}
		if addr == m.Listen {
			v.add("metrics.listen", "%s is also manager.listen: the metrics need a listener of their own (the manager serves /metrics too)", m.Listen)
		}
	}
	for i := range c.Balancers {
		if c.ListenOf(&c.Balancers[i]) == m.Listen {
			v.add("metrics.listen", "%s is also the listen of balancers[%d]: the metrics need a listener of their own", m.Listen, i)
			break
		}
	}
}
