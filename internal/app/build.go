// Package app is the composition root: it turns a config.Config into
// running balancers, listeners and the manager, reloads them, and shuts
// them down in order. The libraries know nothing of the file format; the
// mapping lives here.
package app

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"

	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/balancer/health"
	"github.com/tetherlb/tether/config"
)

// balancerOptions maps one balancer of the file onto balancer.Options.
func balancerOptions(cfg *config.Config, b *config.Balancer, logger, access *slog.Logger) (balancer.Options, error) {
	o := balancer.Options{
		Name:            b.Name,
		StickyNames:     b.Sticky.Names,
		NoFailover:      b.NoFailover,
		Replicated:      b.Sessions == "replicated",
		Method:          balancer.Method(b.Method),
		MaxAttempts:     b.MaxAttempts,
		ConnectTimeout:  b.Timeouts.Connect,
		ResponseTimeout: b.Timeouts.Response,
		IdleTimeout:     b.Timeouts.Idle,
		MaxConns:        b.MaxConns,
		SlowStart:       b.SlowStart,
		SendProxy:       map[string]int{"v1": 1, "v2": 2}[b.SendProxy],
		QueueTimeout:    b.Timeouts.Queue,
		Failures:        b.Passive.Failures,
		Health:          health.Options{ProbeInterval: b.Passive.ProbeInterval},
		MaxURLBytes:     cfg.Limits.MaxURLBytes,
		MaxBodyBytes:    cfg.Limits.MaxBodyBytes,
		Logger:          logger,
		AccessLog:       access,
		SessionIdle:     b.Drain.Idle,
		DrainStop:       b.Drain.Done == "stop",
		DrainDeadline:   b.Drain.Deadline,
		AJPPacketSize:   b.AJP.PacketSize,
		AJPPingIdle:     b.AJP.PingIdle,
	}
	if err := stickyOptions(&o, b); err != nil {
		return o, err
	}
	mt, err := config.ClientTLS(b.MemberTLS)
	if err != nil {
		return o, fmt.Errorf("balancer %s: member_tls: %w", b.Name, err)
	}
	o.MemberTLS = mt
	if h := b.Health; h != nil {
		o.Health.Path = h.Path
		if o.Health.Path == "" {
			o.Health.Path = "/healthz"
		}
		o.Health.Interval, o.Health.Timeout, o.Health.Rise, o.Health.Fall = h.Interval, h.Timeout, h.Rise, h.Fall
	}
	for _, p := range cfg.TrustedProxies {
		prefix, err := config.ParsePrefix(p)
		if err != nil {
			return o, err
		}
		o.TrustedProxies = append(o.TrustedProxies, prefix)
	}
	return o, nil
}

// memberConfigs maps the members of one balancer of the file, with the
// AJP secrets read from their files or getenv (os.Getenv if nil).
func memberConfigs(b *config.Balancer, getenv func(string) string) ([]balancer.MemberConfig, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	out := make([]balancer.MemberConfig, 0, len(b.Members))
	for _, m := range b.Members {
		mc, err := MemberConfig(m)
		if err != nil {
			return nil, err
		}
		if mc.URL.Scheme == "ajp" {
			file, env := m.SecretFile, m.SecretEnv
			if file == "" && env == "" {
				file, env = b.AJP.SecretFile, b.AJP.SecretEnv
			}
			if mc.Secret, err = config.ReadSecret(file, env, getenv); err != nil {
				return nil, fmt.Errorf("balancer %q, member %q: ajp secret: %w", b.Name, m.Route, err)
			}
		}
		if m.TLS != nil { // else the balancer's member_tls
			if mc.TLS, err = config.ClientTLS(config.MergeTLS(b.MemberTLS, m.TLS)); err != nil {
				return nil, fmt.Errorf("member %q: tls: %w", m.Route, err)
			}
		}
		out = append(out, mc)
	}
	return out, nil
}

// MemberConfig maps one member of the file (or of a manager request).
func MemberConfig(m config.Member) (balancer.MemberConfig, error) {
	u, err := url.Parse(m.URL)
	if err != nil {
		return balancer.MemberConfig{}, fmt.Errorf("member %q: %w", m.Route, err)
	}
	st, err := balancer.ParseState(m.State)
	if err != nil {
		return balancer.MemberConfig{}, err
	}
	return balancer.MemberConfig{URL: u, Route: m.Route, Weight: m.Weight, State: st, MaxConns: m.MaxConns}, nil
}
