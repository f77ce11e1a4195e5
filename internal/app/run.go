package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/internal/heapfloor"
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
	// Hurry, when it receives during the shutdown delay, ends the delay
	// at once (a second SIGTERM). Default nil: the delay runs its course.
	Hurry <-chan struct{}
	// Getenv reads the environment: the secrets given as variables
	// (secret_env, key_env, TETHER_MANAGER_TOKEN, TETHER_METRICS_TOKEN),
	// at start and at each reload, and TETHER_HEAP_FLOOR at start.
	// Default os.Getenv.
	Getenv func(string) string
	// LogLevel, if set, is Logger's level (NewLogger's): a reload sets it
	// to the new file's log.level. Default nil: a reload leaves the level.
	LogLevel *slog.LevelVar
}

func (o ServeOptions) getenv(k string) string {
	if o.Getenv == nil {
		return os.Getenv(k)
	}
	return o.Getenv(k)
}

// ErrConfig wraps the errors of Serve that a change of configuration
// (or of its environment: a token, a certificate, the state file) fixes,
// as opposed to failures while running (an address already in use).
var ErrConfig = errors.New("configuration")

// Serve runs the configuration at o.ConfigPath until ctx is done, then
// shuts down gracefully within the configured shutdown timeout.
//
// It starts in two phases. The first (load, all of Check) reads and
// checks everything cfg names, from files and the environment, logs the
// warnings Check returns, and fails with every problem found, as
// config.FieldErrors wrapped in ErrConfig, before anything is bound,
// written or started. The second makes the manager (its state and audit
// files), joins the group, builds and binds the listeners and serves.
func Serve(ctx context.Context, cfg config.Config, o ServeOptions) error {
	ld, warnings, err := load(cfg, o)
	logWarnings(o.Logger, warnings)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	tel := ld.tel
	// The collector's heap goal stays at or above the floor while this
	// process serves (the GC percentage is the process's).
	defer heapfloor.Keep(ld.heapFloor).Stop()
	mg, err := newManaged(cfg, o, ld)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	h := mg.hooks()
	h.getenv = o.getenv
	if tel != nil {
		h.observer = tel.obs
	}
	srv, err := newServer(mg.effective(cfg), o.Logger, h)
	if err != nil {
		mg.shutdown(0)
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err = srv.Start(); err == nil {
		if err = mg.start(srv); err == nil {
			err = tel.start(srv)
		}
	}
	if err != nil {
		tel.shutdown(0)
		mg.shutdown(0)
		srv.Shutdown(0)
		return err
	}
	if o.Started != nil {
		o.Started(srv)
	}
	for {
		select {
		case <-ctx.Done():
			srv.BeginShutdown()
			if d := cfg.ShutdownDelay; d > 0 {
				o.Logger.Info("shutting down: not ready, still serving", "delay", d)
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-o.Hurry:
					t.Stop()
				}
			}
			o.Logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
			tel.shutdown(cfg.ShutdownTimeout)
			mg.shutdown(cfg.ShutdownTimeout)
			srv.Shutdown(cfg.ShutdownTimeout)
			return nil
		case <-o.Reload:
			next, err := config.Load(o.ConfigPath)
			if err != nil {
				o.Logger.Error("reload refused: the running configuration is kept", "err", err)
				continue
			}
			if err := reload(mg, srv, next, o); err != nil {
				o.Logger.Error("reload failed: the running configuration is kept", "err", err)
				continue
			}
			if o.LogLevel != nil {
				SetLogLevel(o.LogLevel, next.Log)
			}
			tel.reload(next, o.Logger)
			if next.Log.Format != cfg.Log.Format {
				o.Logger.Warn("a new log.format takes effect at the next restart")
			}
			cfg = next
			o.Logger.Info("configuration reloaded", "file", o.ConfigPath)
		}
	}
}

// reload applies next, a configuration file just read, to the running
// server and manager, all or nothing: on error both are as they were, and
// the manager records nothing.
func reload(mg *managed, srv *Server, next config.Config, o ServeOptions) error {
	return mg.reload(next, o, func(run config.Config) error { return srv.Reload(run, next.ShutdownTimeout) })
}
