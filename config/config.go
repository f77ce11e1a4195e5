// Package config is the schema of tether's YAML configuration file, its
// strict loader and its validation.
//
// Load rejects unknown keys and reports every problem as "FILE:LINE: message".
// A zero value in the file means "the default", stated on each field; the
// defaults themselves belong to the libraries (balancer.Options and friends)
// that internal/app builds from a Config, so that a Go user embedding them
// gets the same behaviour without this format.
package config

import "time"

// Config is a whole configuration file.
type Config struct {
	// Listen is the address balancers without a listen of their own serve
	// on. Default "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// TLS, when set, terminates TLS on Listen (HTTP/2 is offered to clients).
	TLS *TLS `yaml:"tls"`
	// UnknownHost is the status of a request whose host no balancer's
	// hosts name, on a listener where every balancer names hosts: 421
	// (default) or 404. A balancer without hosts serves every other host.
	UnknownHost int `yaml:"unknown_host"`
	// TrustedProxies lists the addresses (IPs or CIDRs) whose incoming
	// X-Forwarded-* and Forwarded headers are kept and extended. From anyone
	// else they are replaced. Default: none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ProxyProtocol, when set, makes the listed sources (L4 load balancers
	// in front) start each connection with a PROXY protocol header, whose
	// client address then stands for theirs.
	ProxyProtocol *ProxyProtocol `yaml:"proxy_protocol"`
	// Limits bounds what clients may send.
	Limits Limits `yaml:"limits"`
	// AccessLog is where the access log goes: "" or "off" (default: none),
	// "stdout", "stderr" or a file path (appended to).
	AccessLog string `yaml:"access_log"`
	// Engine is the HTTP engine that serves clients: "auto" (default) or
	// "native": Tether's own HTTP/1.1 engine on every listener, over
	// crypto/tls on TLS ones, where clients that negotiate HTTP/2 by ALPN
	// are served by net/http's server; "nethttp": net/http's server on
	// every listener.
	Engine string `yaml:"engine"`
	// ShutdownTimeout is how long a graceful shutdown (SIGTERM) waits for
	// requests in flight. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ShutdownDelay is how long, on SIGTERM, the listeners keep serving
	// while the readiness probe answers 503, so that whatever routes to
	// this instance (an orchestrator, a load balancer in front) stops
	// before the listeners close. Default 0: they close at once.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
	// Probes are readiness and liveness endpoints on every proxy listener.
	Probes Probes `yaml:"probes"`
	// RedirectHTTPS, when set, is a plaintext listener that answers every
	// request (but the probes) with a redirect to the same URL over https.
	RedirectHTTPS *RedirectHTTPS `yaml:"redirect_https"`
	// Manager is the management API and web UI. Omitted: no manager runs.
	Manager *Manager `yaml:"manager"`
	// Log configures the server log. Default: text, level info.
	Log Log `yaml:"log"`
	// Metrics, when set, serves GET /metrics on a listener of its own.
	// Omitted: the metrics are only on the manager's /metrics.
	Metrics *Metrics `yaml:"metrics"`
	// Group makes several instances act as one (see Group). Omitted: this
	// instance is on its own.
	Group *Group `yaml:"group"`
	// Balancers are the balancers served. At least one is required.
	Balancers []Balancer `yaml:"balancers"`
}

// TLS names a certificate and its key, both PEM files, and more
// certificates chosen by the name a client asks for (SNI).
type TLS struct {
	// Cert and Key are the default certificate: served to clients whose
	// SNI no other certificate matches (or that send none). Required.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// Certificates are more certificates on the same listener; a client
	// gets the first whose names match the server name it asks for.
	Certificates []Certificate `yaml:"certificates"`
}

// Certificate is a PEM certificate (chain) and its key.
type Certificate struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Probes are the endpoints orchestrators poll on the proxy listeners,
// answered by Tether itself (never proxied), for any host.
type Probes struct {
	// ReadyPath answers 200, or 503 from SIGTERM on. Default "": none.
	ReadyPath string `yaml:"ready_path"`
	// LivePath answers 200 while the process serves. Default "": none.
	LivePath string `yaml:"live_path"`
}

// ProxyProtocol lists who sends PROXY protocol headers.
type ProxyProtocol struct {
	// From are the IPs or CIDR prefixes whose connections must start with
	// a header (version 1 or 2); connections from them without one are
	// closed. Others must not send one. Required.
	From []string `yaml:"from"`
}

// RedirectHTTPS is a listener that sends clients to https.
type RedirectHTTPS struct {
	// Listen is its address, like "0.0.0.0:80". Required; no balancer may
	// use it.
	Listen string `yaml:"listen"`
	// Port is the port of the https URLs. Default 443 (left out of them).
	Port int `yaml:"port"`
}

// Limits bounds client requests. Zero means the default.
type Limits struct {
	// MaxHeaderBytes caps the request line and headers together.
	// Default 65536. Larger requests get 431.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxURLBytes caps the request target. Default 8192 (as httpd's
	// LimitRequestLine). Longer ones get 414.
	MaxURLBytes int `yaml:"max_url_bytes"`
	// MaxBodyBytes caps request bodies. Default 0: no limit. Larger ones get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// HeaderTimeout is how long a client may take to send its headers.
	// Default 10s.
	HeaderTimeout time.Duration `yaml:"header_timeout"`
	// IdleTimeout closes idle client keep-alive connections. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ParkAfter is how long an idle keep-alive client connection keeps
	// its goroutine before it is parked (native engine, Linux). Default
	// 10ms; at or above IdleTimeout, never.
	ParkAfter time.Duration `yaml:"park_after"`
}

// Manager configures the management listener.
type Manager struct {
	// Listen is the manager's address. Default "127.0.0.1:8081". A
	// non-loopback address also needs AllowRemote.
	Listen string `yaml:"listen"`
	// AllowRemote permits a Listen address that is not loopback.
	AllowRemote bool `yaml:"allow_remote"`
	// Token is the bearer token for every request but /healthz. One of
	// Token, TokenFile or the TETHER_MANAGER_TOKEN environment variable is
	// required.
	Token string `yaml:"token"`
	// TokenFile holds the token (surrounding white space ignored).
	TokenFile string `yaml:"token_file"`
	// ReadOnlyToken may read but not change anything. Optional.
	ReadOnlyToken string `yaml:"read_only_token"`
	// ReadOnlyTokenFile holds the read-only token.
	ReadOnlyTokenFile string `yaml:"read_only_token_file"`
	// StateFile keeps changes made through the manager across restarts.
	// Default: none (changes last until the process ends).
	StateFile string `yaml:"state_file"`
	// AuditFile keeps every audit entry (one JSON line each, appended);
	// the latest are shown again after a restart. Default: none (the
	// latest 1,000 in memory, and every entry in the log).
	AuditFile string `yaml:"audit_file"`
	// AllowedOrigins are the origins, besides the manager's own, from which
	// a browser may send changes. Default: none.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Balancer is one balancer: a path prefix on a listener and its members.
type Balancer struct {
	// Name identifies the balancer in the manager, logs and metrics. Required.
	Name string `yaml:"name"`
	// Listen gives the balancer a listener of its own. Default: the
	// top-level Listen.
	Listen string `yaml:"listen"`
	// TLS terminates TLS on the balancer's own Listen.
	TLS *TLS `yaml:"tls"`
	// Hosts are the host names served, matched before Path: exact
	// ("shop.example.com") or a wildcard for one label ("*.example.com").
	// Default none: every host no other balancer on the listener names.
	Hosts []string `yaml:"hosts"`
	// Path is the URL prefix served, matched on whole segments; the longest
	// matching prefix on a listener wins. Default "/".
	Path string `yaml:"path"`
	// Sticky says where the session id is found.
	Sticky Sticky `yaml:"sticky"`
	// NoFailover, when true, answers a sticky request whose member is not
	// available with 503 and never sends it to another member.
	NoFailover bool `yaml:"nofailover"`
	// Sessions is "local" (default: a session lives on one member) or
	// "replicated" (any member can take a session over, so draining moves
	// sessions at once).
	Sessions string `yaml:"sessions"`
	// Method picks the member for new sessions: byrequests (default),
	// bybusyness, bytraffic or p2c.
	Method string `yaml:"method"`
	// MaxAttempts is how many members one request may be tried on. Default 3.
	MaxAttempts int `yaml:"max_attempts"`
	// SlowStart, if set, is how long a member that comes back (up again,
	// active again after stopped or standby, added through the manager)
	// takes to ramp its share of new sessions up to its weight's (HAProxy's
	// slowstart). Default 0: at once.
	SlowStart time.Duration `yaml:"slow_start"`
	// MaxConns is how many requests each member is sent at once; more
	// wait in the member's queue for up to Timeouts.Queue. Default 0: no
	// limit.
	MaxConns int `yaml:"max_conns"`
	// MemberTLS configures TLS towards the https members; a member's own
	// TLS overrides it key by key. Default: the system's roots, the member
	// URL's host as the server name, no client certificate.
	MemberTLS *MemberTLS `yaml:"member_tls"`
	// SendProxy is "v1" or "v2" to start every connection to a member
	// with a PROXY protocol header naming the client (HAProxy's
	// send-proxy, send-proxy-v2); health checks send a LOCAL one. A member
	// connection then serves one request. Default "": none.
	SendProxy string `yaml:"send_proxy"`
	// Timeouts towards the members.
	Timeouts Timeouts `yaml:"timeouts"`
	// Health configures active health checks. Omitted: none, passive
	// checks only.
	Health *Health `yaml:"health"`
	// Passive configures passive health checks.
	Passive Passive `yaml:"passive"`
	// Drain configures how draining members are tracked.
	Drain Drain `yaml:"drain"`
	// AJP configures the balancer's ajp:// members.
	AJP AJP `yaml:"ajp"`
	// Members are the backends. At least one is required.
	Members []Member `yaml:"members"`
}

// Sticky says where a request carries its session's route.
type Sticky struct {
	// Mode is "route" (default: the route ends the application's own
	// session id, "<id>.<route>", as Tomcat's jvmRoute writes it),
	// "insert" (Tether sets a signed cookie of its own naming the member;
	// see Cookie) or "prefix" (Tether puts the route in front of the
	// application's session cookie on the way out, "<route>~<id>", and
	// removes it on the way in).
	Mode string `yaml:"mode"`
	// Names are the application's session cookies. In route mode they are
	// looked up as cookies, then as ";name=" path parameters, then as
	// query parameters; in prefix mode as cookies; in insert mode a
	// response expiring one (a logout) also ends Tether's cookie. Default
	// [JSESSIONID, jsessionid].
	Names []string `yaml:"names"`
	// Separator is the one character between the id and the route (route
	// mode; the route is the text after the first one), or between the
	// route and the application's value (prefix mode; the route is the
	// text before the first one). Default "." in route mode, "~" in
	// prefix mode.
	Separator string `yaml:"separator"`
	// Cookie is Tether's own cookie in insert mode, where its key is
	// required.
	Cookie *StickyCookie `yaml:"cookie"`
}

// StickyCookie is Tether's own cookie in insert mode. Its value names the
// member and is signed (HMAC-SHA256) so that clients cannot choose one.
type StickyCookie struct {
	// Name is the cookie's name. Default "TETHERID".
	Name string `yaml:"name"`
	// KeyFile holds the signing keys, one per line (blank lines and lines
	// starting with # ignored), each at least 32 characters: the first
	// signs, every one verifies. To rotate, put a new key first, reload,
	// and remove the old one after the longest session. One of KeyFile or
	// KeyEnv is required.
	KeyFile string `yaml:"key_file"`
	// KeyEnv names an environment variable holding the keys, in the same
	// format as KeyFile.
	KeyEnv string `yaml:"key_env"`
	// Path is the cookie's Path. Default: the balancer's path.
	Path string `yaml:"path"`
	// Domain is the cookie's Domain. Default: none (the host only).
	Domain string `yaml:"domain"`
	// Secure is "auto" (default: Secure when the client's connection is
	// TLS, or a trusted proxy says so in X-Forwarded-Proto), "always" or
	// "never".
	Secure string `yaml:"secure"`
	// HTTPOnly hides the cookie from scripts. Default true.
	HTTPOnly *bool `yaml:"http_only"`
	// SameSite is "lax" (default), "strict", "none" (which browsers accept
	// only with Secure) or "off" (the attribute left out).
	SameSite string `yaml:"same_site"`
	// MaxIdle, if set, ends a session that sent no request for that long
	// (checked from the cookie itself, so instances share no state).
	// Default 0: no limit.
	MaxIdle time.Duration `yaml:"max_idle"`
	// MaxLife, if set, ends a session that long after it began, whatever
	// its activity. Default 0: no limit.
	MaxLife time.Duration `yaml:"max_life"`
	// NoCache adds "Cache-Control: private" to the responses that set the
	// cookie (HAProxy's nocache), so that a shared cache in front keeps
	// none of them for other users. Default false.
	NoCache bool `yaml:"no_cache"`
}

// Timeouts towards members. Zero means the default.
type Timeouts struct {
	// Connect bounds establishing a connection. Default 2s.
	Connect time.Duration `yaml:"connect"`
	// Response bounds the wait for the response headers once the request
	// is sent. Default 30s.
	Response time.Duration `yaml:"response"`
	// Idle closes idle keep-alive connections to members. Default 90s.
	Idle time.Duration `yaml:"idle"`
	// Queue bounds the wait for a free slot with MaxConns. Default 5s.
	Queue time.Duration `yaml:"queue"`
}

// Health configures active checks: GET Path every Interval.
type Health struct {
	// Path is requested on each member. Default "/healthz".
	Path string `yaml:"path"`
	// Interval between checks. Default 2s.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one check. Default 1s.
	Timeout time.Duration `yaml:"timeout"`
	// Rise is how many successes in a row bring a down member up. Default 2.
	Rise int `yaml:"rise"`
	// Fall is how many failures in a row take an up member down. Default 2.
	Fall int `yaml:"fall"`
}

// Passive configures passive checks: failures seen on real traffic.
type Passive struct {
	// Failures is how many connection failures or timeouts in a row take a
	// member down. Default 1.
	Failures int `yaml:"failures"`
	// ProbeInterval is how often a member taken down by real traffic is
	// probed (with the health path if Health is set, else a TCP connect);
	// it is up again after the first successful probe. Default 1s.
	ProbeInterval time.Duration `yaml:"probe_interval"`
}

// Drain configures the live-session tracking that draining relies on.
type Drain struct {
	// Idle is how long a session may go unseen before it no longer counts
	// as live. Default 30m (Tomcat's default session timeout).
	Idle time.Duration `yaml:"idle"`
	// Done is what happens when a draining member has no live session left
	// or Deadline passes: "" (default: nothing) or "stop".
	Done string `yaml:"done"`
	// Deadline bounds a drain when Done is "stop". Default 0: no deadline.
	Deadline time.Duration `yaml:"deadline"`
}

// AJP configures ajp:// members (Tomcat's AJP connector, AJP 1.3).
type AJP struct {
	// PacketSize is the AJP packet size, 1024 to 65536; it must match the
	// connectors' packetSize (mod_jk's max_packet_size). Default 8192.
	PacketSize int `yaml:"packet_size"`
	// PingIdle: a kept connection idle for at least this long is checked
	// with CPing/CPong before it carries a request (mod_jk's ping_mode).
	// Default 10s; a negative duration: never.
	PingIdle time.Duration `yaml:"ping_idle"`
	// SecretFile holds the secret (surrounding white space ignored) sent
	// to every ajp:// member of the balancer that has none of its own.
	// Tomcat's connector secret.
	SecretFile string `yaml:"secret_file"`
	// SecretEnv names an environment variable holding that secret instead.
	SecretEnv string `yaml:"secret_env"`
	// AllowNoSecret permits ajp:// members off loopback without a secret
	// (a Tomcat with secretRequired="false"). Default false: such a member
	// is an error, since whoever reaches its port can claim any client
	// address, TLS state or user (Ghostcat, CVE-2020-1938).
	AllowNoSecret bool `yaml:"allow_no_secret"`
}

// Member is one backend.
type Member struct {
	// URL is the member's base URL: http://, https:// or ajp:// (AJP 1.3,
	// port 8009 if none is given). Required.
	URL string `yaml:"url"`
	// Route is the member's name as found after the separator in session
	// ids (Tomcat's jvmRoute). Required, unique within the balancer.
	Route string `yaml:"route"`
	// Weight is the member's share of new sessions, 1 to 1000. Default 1.
	Weight int `yaml:"weight"`
	// State is active (default), draining, stopped or standby.
	State string `yaml:"state"`
	// MaxConns overrides the balancer's max_conns for this member.
	// Default 0: the balancer's.
	MaxConns int `yaml:"max_conns"`
	// SecretFile holds the AJP secret of an ajp:// member (surrounding
	// white space ignored). Default: the balancer's ajp secret, if any.
	SecretFile string `yaml:"secret_file"`
	// SecretEnv names an environment variable holding the member's AJP
	// secret instead.
	SecretEnv string `yaml:"secret_env"`
	// TLS overrides keys of the balancer's member_tls for this https
	// member. Default: the balancer's.
	TLS *MemberTLS `yaml:"tls"`
}

// MemberTLS configures TLS towards https members, for their traffic and
// their health checks alike.
type MemberTLS struct {
	// CA is a PEM file of the certificate authorities that members'
	// certificates must chain to, instead of the system's. Default: the
	// system's roots.
	CA string `yaml:"ca"`
	// Cert and Key are a client certificate and its key (PEM files), for
	// members that require one. Default: none.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ServerName is the name the member's certificate must bear (and the
	// SNI sent). Default: the host of the member's URL.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate: encryption without
	// authentication. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Default returns the configuration an empty file would give, before
// validation: the top-level defaults filled in.
func Default() Config {
	return Config{
		Listen:          "127.0.0.1:8080", // loopback until told otherwise
		ShutdownTimeout: 30 * time.Second, // requests in flight get this long on SIGTERM
	}
}

// DefaultManagerListen is the manager's address when the file gives none.
const DefaultManagerListen = "127.0.0.1:8081"
