package balancer

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/tetherlb/tether/ajp"
)

// ajp:// members: both engines send their requests through the member's
// ajp.Client (a pool of AJP13 connections), with the client's address,
// port and TLS state as AJP attributes instead of forwarding headers.

// setUp gives m the connection settings of s: the native engine's pool
// options, and for an ajp:// member a client built from them (the old
// one's idle connections are closed).
func (s *settings) setUp(m *Member) {
	m.conns.SetOptions(s.connOptions())
	if m.url.Scheme != "ajp" {
		return
	}
	c, err := ajp.NewClient(ajp.ClientOptions{
		Addr:            m.addr,
		Secret:          m.secret,
		Route:           m.route,
		PacketSize:      s.opts.AJPPacketSize,
		ConnectTimeout:  s.opts.ConnectTimeout,
		ResponseTimeout: s.opts.ResponseTimeout,
		IdleTimeout:     s.opts.IdleTimeout,
		PingIdle:        s.opts.AJPPingIdle,
		MaxIdle:         s.opts.MaxIdlePerMember,
		Refused:         func() { m.noteRefused(s) },
	})
	if err != nil {
		// Options.AJPPacketSize was checked by buildSettings.
		panic("balancer: " + err.Error())
	}
	if old := m.ajp.Swap(c); old != nil {
		old.CloseIdleConnections(true)
	}
}

// refusedLogEvery is how often a member's refusals are logged at most.
const refusedLogEvery = time.Minute

// noteRefused counts a request the member refused as Tomcat refuses a
// wrong or missing secret, and logs it (once a minute at most).
func (m *Member) noteRefused(s *settings) {
	n := m.refused.Add(1)
	now := s.opts.Now().UnixNano()
	last := m.refusedLogged.Load()
	if last != 0 && now-last < int64(refusedLogEvery) || !m.refusedLogged.CompareAndSwap(last, now) {
		return
	}
	s.opts.Logger.Warn("ajp member refused a request with 403 and closed the connection, as Tomcat does when the secret is wrong or missing: check the member's secret_file or secret_env against the connector's secret",
		"balancer", s.opts.Name, "member", m.route, "url", m.url.String(), "refused", n, "has_secret", m.secret != "")
}

// closeConns closes the member's idle connections, and keeps none after.
func (m *Member) closeConns() {
	m.conns.Close()
	if c := m.ajp.Load(); c != nil {
		c.CloseIdleConnections(true)
	}
}

// Ping checks an ajp:// member with CPing/CPong; it implements
// health.Pinger, so that probes without a health path use it instead of
// a TCP connect. Other members return errors.ErrUnsupported.
func (m *Member) Ping(ctx context.Context) error {
	c := m.ajp.Load()
	if c == nil {
		return errors.ErrUnsupported
	}
	return c.Ping(ctx)
}

// HealthTransport returns the transport health checks of the member go
// through: its AJP client for an ajp:// member, else nil (the checker's
// own); it implements health.Transporter.
func (m *Member) HealthTransport() http.RoundTripper {
	if c := m.ajp.Load(); c != nil {
		return c
	}
	return nil
}

// forwardOf describes the client of the request for an AJP member: the
// connection's peer; or, when the peer is a trusted proxy, the client its
// forwarding headers in name, as mod_remoteip would: the last address of
// X-Forwarded-For that is not a trusted proxy (port unknown),
// X-Forwarded-Proto https as is_ssl, X-Forwarded-Host as the server name.
func (a *attempt) forwardOf(in priorHeaders) *ajp.Forward {
	var f *ajp.Forward
	if a.in != nil {
		f = ajp.ForwardOf(a.in)
	} else {
		f = ajp.ForwardFor(a.req.remoteAddr, a.req.host, a.x.c.NetConn().LocalAddr(), a.x.c.TLSState())
	}
	if !a.req.clientKnown || !a.trusted() {
		return f
	}
	if client, ok := a.forwardedClient(in.values("X-Forwarded-For")); ok {
		f.RemoteAddr, f.RemotePort = client.String(), 0
	}
	fw := a.forwarding(in)
	if fw.proto == "https" && !f.Secure {
		f.Secure = true
	}
	if fw.host != a.req.host {
		f.ServerName = hostOnly(fw.host)
	}
	return f
}

// forwardedClient returns the last address of the X-Forwarded-For values
// that is not a trusted proxy, or the first one if all are.
func (a *attempt) forwardedClient(values []string) (netip.Addr, bool) {
	var addrs []netip.Addr
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if ad, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
				addrs = append(addrs, ad.Unmap())
			}
		}
	}
	for i := len(addrs) - 1; i >= 0; i-- {
		trusted := false
		for _, p := range a.s.opts.TrustedProxies {
			trusted = trusted || p.Contains(addrs[i])
		}
		if !trusted {
			return addrs[i], true
		}
	}
	if len(addrs) > 0 {
		return addrs[0], true
	}
	return netip.Addr{}, false
}

// hostOnly is the host of a Host value, without its port.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}
