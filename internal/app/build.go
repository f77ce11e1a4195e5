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

// balancerOptions maps balancer i of the file onto balancer.Options,
// reading its cookie keys (through getenv for key_env) and member TLS
// files. Its error is config.FieldErrors: every problem found.
func balancerOptions(cfg *config.Config, i int, logger, access *slog.Logger, getenv func(string) string) (balancer.Options, error) {
	b := &cfg.Balancers[i]
	f := fmt.Sprintf("balancers[%d]", i)
	var ps problems
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
	ps.add("", stickyOptions(&o, b, f, getenv))
	mt, err := config.ClientTLS(b.MemberTLS)
	ps.add(f+".member_tls", err)
	o.MemberTLS = mt
	if h := b.Health; h != nil {
		o.Health.Path = h.Path
		if o.Health.Path == "" {
			o.Health.Path = "/healthz"
		}
		o.Health.Interval, o.Health.Timeout, o.Health.Rise, o.Health.Fall = h.Interval, h.Timeout, h.Rise, h.Fall
	}
	for j, p := range cfg.TrustedProxies {
		prefix, err := config.ParsePrefix(p)
		if err != nil {
			ps.add(fmt.Sprintf("trusted_proxies[%d]", j), err)
			continue
		}
		o.TrustedProxies = append(o.TrustedProxies, prefix)
	}
	return o, ps.err()
}

// memberConfigs maps the members of one balancer of the file, whose field
// there is f ("balancers[0]"), with the AJP secrets read from their files
// or through getenv (os.Getenv if nil). Its error is config.FieldErrors:
// every problem found.
func memberConfigs(b *config.Balancer, f string, getenv func(string) string) ([]balancer.MemberConfig, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var ps problems
	out := make([]balancer.MemberConfig, 0, len(b.Members))
	for j, m := range b.Members {
		mf := fmt.Sprintf("%s.members[%d]", f, j)
		mc, err := MemberConfig(m)
		if err != nil {
			ps.add(mf+".url", err)
			continue
		}
		if mc.URL.Scheme == "ajp" {
			file, env, field := m.SecretFile, m.SecretEnv, mf+"."
			if file == "" && env == "" {
				file, env, field = b.AJP.SecretFile, b.AJP.SecretEnv, f+".ajp."
			}
			if file != "" {
				field += "secret_file"
			} else {
				field += "secret_env"
			}
			mc.Secret, err = config.ReadSecret(file, env, getenv)
			ps.add(field, err)
		}
		if m.TLS != nil { // else the balancer's member_tls
			mc.TLS, err = config.ClientTLS(config.MergeTLS(b.MemberTLS, m.TLS))
			ps.add(mf+".tls", err)
		}
		out = append(out, mc)
	}
	if err := ps.err(); err != nil {
		return nil, err
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
