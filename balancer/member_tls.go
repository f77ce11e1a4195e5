package balancer

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// TLS towards https members, the same for the traffic of both engines
// and for health checks and probes: one dial function (dialMember) does
// the TCP connect and the TLS handshake with the member's configuration,
// so that a member whose certificate fails is down, with the reason, and
// never up in the checks while failing in traffic.

// memberTLS returns the TLS configuration for member m: its own
// (MemberConfig.TLS) or the balancer's (Options.MemberTLS), with the
// server name defaulted to the member URL's host and HTTP/1.1 offered.
func (s *settings) memberTLS(m *Member) *tls.Config {
	var cfg *tls.Config
	switch c := m.tlsConf.Load(); {
	case c != nil:
		cfg = c.Clone()
	case s.opts.MemberTLS != nil:
		cfg = s.opts.MemberTLS.Clone()
	default:
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = m.url.Hostname()
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	cfg.NextProtos = []string{"http/1.1"}
	return cfg
}

// dialMember connects to m: TCP, then for an https member the TLS
// handshake, each within ConnectTimeout. Errors are *net.OpError with Op
// "dial": nothing was sent.
func (s *settings) dialMember(ctx context.Context, m *Member) (net.Conn, error) {
	d := net.Dialer{Timeout: s.opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil || !m.tls {
		return nc, err
	}
	tc := tls.Client(nc, s.memberTLS(m))
	hctx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		nc.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: nc.RemoteAddr(), Err: fmt.Errorf("TLS handshake: %w", err)}
	}
	return tc, nil
}

// dialAddr connects to the member at addr ("host:port", as a transport
// or the health checker names it).
func (s *settings) dialAddr(ctx context.Context, p *Pool, addr string) (net.Conn, error) {
	for _, m := range p.Members() {
		if m.addr == addr {
			return s.dialMember(ctx, m)
		}
	}
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("no member at %s", addr)}
}
