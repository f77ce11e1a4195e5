package app

import (
	"context"
	"log/slog"

	"github.com/tetherlb/tether/config"
)

// ServeOptions configures Serve.
type ServeOptions struct {
	// ConfigPath is the configuration file, read at start and on reload.
	ConfigPath string
	// Logger receives the server's log. Required.
	Logger *slog.Logger
	// Reload, when it receives, re-reads ConfigPath and applies it; an
	// invalid file is logged and the running configuration kept.
	Reload <-chan struct{}
	// Started, if set, is called once everything listens.
	Started func(*Server)
}

// Serve runs the configuration at o.ConfigPath until ctx is done, then
// shuts down gracefully within the configured shutdown timeout.
func Serve(ctx context.Context, cfg config.Config, o ServeOptions) error {
	srv, err := NewServer(cfg, o.Logger)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		srv.Shutdown(0)
		return err
	}
	if o.Started != nil {
		o.Started(srv)
	}
	for {
		select {
		case <-ctx.Done():
			o.Logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
			srv.Shutdown(cfg.ShutdownTimeout)
			return nil
		case <-o.Reload:
			next, err := config.Load(o.ConfigPath)
			if err != nil {
				o.Logger.Error("reload refused: the running configuration is kept", "err", err)
				continue
			}
			if err := srv.Reload(next, next.ShutdownTimeout); err != nil {
				o.Logger.Error("reload failed: the running configuration is kept", "err", err)
				continue
			}
			cfg = next
			o.Logger.Info("configuration reloaded", "file", o.ConfigPath)
		}
	}
}
