package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/internal/app"
)

func runServe(ctx context.Context, env Env, args []string) int {
	fs := newFlags(env, "serve", "--config FILE")
	path := fs.String("config", "", "configuration file (required)")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if *path == "" || fs.NArg() > 0 {
		fs.Usage()
		return ExitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printConfigErrors(env, err)
		return ExitUsage
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{})
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	// A second SIGTERM or Ctrl-C ends the shutdown delay (the first one
	// ends ctx).
	term := make(chan os.Signal, 2)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(term)
	hurry, done := make(chan struct{}), make(chan struct{})
	defer close(done)
	go func() {
		for n := 0; ; {
			select {
			case <-term:
				if n++; n == 2 {
					close(hurry)
					return
				}
			case <-done:
				return
			}
		}
	}()
	logger, level := app.NewLogger(env.Stderr, cfg.Log)
	bi, _ := debug.ReadBuildInfo()
	logger.Info("tether serve starting", "version", versionLine(Version, bi, runtime.GOOS+"/"+runtime.GOARCH), "config", *path)
	err = app.Serve(ctx, cfg, app.ServeOptions{ConfigPath: *path, Logger: logger, LogLevel: level, Reload: reload, Hurry: hurry, Getenv: env.getenv})
	if err != nil {
		var fes config.FieldErrors
		if errors.As(err, &fes) { // what `tether check` reports, as it does
			printConfigErrors(env, config.Locate(*path, fes))
		} else {
			fmt.Fprintln(env.Stderr, "tether serve:", err)
		}
		if errors.Is(err, app.ErrConfig) {
			return ExitUsage
		}
		return ExitFailure
	}
	return ExitOK
}

// printConfigErrors prints config.Load's (or config.Locate's) errors one
// per line.
func printConfigErrors(env Env, err error) {
	var es config.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			fmt.Fprintln(env.Stderr, e)
		}
		return
	}
	fmt.Fprintln(env.Stderr, err)
}
