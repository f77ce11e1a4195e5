package balancer

import (
	"context"
	"errors"
	"net/http"
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

// forwardOf describes the client of the request for an AJP member.
func (a *attempt) forwardOf() *ajp.Forward {
	if a.in != nil {
		return ajp.ForwardOf(a.in)
	}
	return ajp.ForwardFor(a.req.remoteAddr, a.req.host, a.x.c.NetConn().LocalAddr(), nil)
}
