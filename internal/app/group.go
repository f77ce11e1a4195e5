package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherlb/tether/admin"
	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/group"
	"github.com/tetherlb/tether/metrics"
)

// newGroup returns this instance's side of the group cfg.Group names (nil
// if none), made from its key file and not started: it binds nothing
// until Start. Its records are applied by the manager *mgr, which must be
// set before the group starts. Its error is a config.FieldError.
func newGroup(cfg config.Config, mgr **admin.Manager, logger *slog.Logger) (*group.Group, error) {
	gc := cfg.Group
	if gc == nil {
		return nil, nil
	}
	data, err := os.ReadFile(gc.KeyFile)
	if err != nil {
		return nil, config.FieldError{Field: "group.key_file", Msg: err.Error()}
	}
	secret := []byte(strings.TrimSpace(string(data)))
	if len(secret) < group.MinSecret {
		return nil, config.FieldError{Field: "group.key_file", Msg: fmt.Sprintf("%s: %d bytes, want at least %d (openssl rand -hex 32)", gc.KeyFile, len(secret), group.MinSecret)}
	}
	g, err := group.New(group.Options{
		Name: gc.Name, Listen: gc.Listen, Peers: slices.Clone(gc.Peers), Secret: secret,
		Apply:   func(r group.Record, won bool) { (*mgr).ApplyShared(r, won) },
		Tallies: func() map[string]group.Tally { return (*mgr).Tallies() },
		Logger:  logger.With("part", "group"),
	})
	if err != nil {
		return nil, config.FieldError{Field: "group", Msg: err.Error()}
	}
	return g, nil
}

// startGroup starts g and takes the group's state, waiting at most
// cfg.Group.JoinTimeout; an instance no peer answers serves with its own
// state (the manager's /healthz says "alone") and keeps trying to join.
func startGroup(g *group.Group, mgr *admin.Manager, cfg config.Config, reg prometheus.Registerer, logger *slog.Logger) error {
	if g == nil {
		return nil
	}
	if err := g.Start(); err != nil {
		return err
	}
	if err := metrics.RegisterGroup(reg, g.Status, mgr.GroupSessions); err != nil {
		return err
	}
	wait := cfg.Group.JoinTimeout
	if wait == 0 {
		wait = config.DefaultGroupJoinTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := g.Join(ctx); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		logger.Warn("group: no peer answered; serving with this instance's own state until one does", "peers", cfg.Group.Peers, "waited", wait)
		return nil
	}
	logger.Info("group: joined, the group's state taken", "instance", g.Name())
	return nil
}
