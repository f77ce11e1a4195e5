package balancer

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/tetherlb/tether/balancer/proxyproto"
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

// dialMember connects to m: TCP, then the PROXY protocol header hdr if
// any (SendProxy), then for an https member the TLS handshake, each
// within ConnectTimeout. Errors are *net.OpError with Op "dial": nothing
// of the request was sent.
func (s *settings) dialMember(ctx context.Context, m *Member, hdr []byte) (net.Conn, error) {
	d := net.Dialer{Timeout: s.opts.ConnectTimeout, KeepAlive: 30 * time.Second, ControlContext: connectNow}
	nc, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return nil, err
	}
	if len(hdr) > 0 {
		nc.SetWriteDeadline(time.Now().Add(s.opts.ConnectTimeout))
		if _, err := nc.Write(hdr); err != nil {
			nc.Close()
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: nc.RemoteAddr(), Err: fmt.Errorf("PROXY protocol header: %w", err)}
		}
		nc.SetWriteDeadline(time.Time{})
	}
	if !m.tls {
		return nc, nil
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
// or the health checker names it). With SendProxy, the header names the
// client of the request in ctx (net/http engine), or none (a health
// check).
func (s *settings) dialAddr(ctx context.Context, p *Pool, addr string) (net.Conn, error) {
	var hdr []byte
	if s.opts.SendProxy != 0 {
		if a := attemptOf(ctx); a != nil {
			hdr = a.proxyHeader(nil)
		} else {
			hdr = proxyproto.AppendLocal(nil, s.opts.SendProxy)
		}
	}
	for _, m := range p.Members() {
		if strings.EqualFold(m.addr, addr) { // net/http lowers the host's case
			return s.dialMember(ctx, m, hdr)
		}
	}
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("no member at %s", addr)}
}

// proxyHeader appends the PROXY protocol header for a connection made for
// this request (SendProxy): from the client's address to the one it
// connected to (the listener's, or the one a PROXY header gave it).
func (a *attempt) proxyHeader(b []byte) []byte {
	src, _ := netip.ParseAddrPort(a.req.remoteAddr)
	var dst netip.AddrPort
	if ta, ok := a.cl.localAddr().(*net.TCPAddr); ok {
		dst = ta.AddrPort()
	}
	if a.s.opts.SendProxy == 1 {
		return proxyproto.AppendV1(b, src, dst)
	}
	return proxyproto.AppendV2(b, src, dst)
}
