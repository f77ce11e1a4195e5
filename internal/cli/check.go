package cli

import (
	"context"
	"fmt"
	"slices"

	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/internal/app"
)

// runCheck validates a configuration file as `tether serve` loads it at
// start: the file itself (config.Load), then everything it names, read
// from disk and from this process's environment by the code serve runs
// (app.Check): secrets, tokens, cookie keys, the group's key, the state
// file, certificates, keys and CA files. It binds no port, writes no
// file, starts nothing and contacts no peer. The warnings serve logs at
// start for the file are printed too, as FILE:LINE: warning: message,
// in line order among the problems; warnings alone leave the exit
// status 0.
func runCheck(_ context.Context, env Env, args []string) int {
	fs := newFlags(env, "check", "--config FILE")
	path := fs.String("config", "", "configuration file to validate (required)")
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
	warnings, err := app.Check(cfg, app.ServeOptions{ConfigPath: *path, Getenv: env.getenv})
	report := warningLines(*path, warnings)
	if err != nil {
		report = append(report, config.Locate(*path, err)...)
		slices.SortStableFunc(report, func(a, b *config.Error) int { return a.Line - b.Line })
	}
	if len(report) > 0 {
		printConfigErrors(env, report)
	}
	if err != nil {
		return ExitUsage
	}
	members := 0
	for _, b := range cfg.Balancers {
		members += len(b.Members)
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%d balancers, %d members)\n", *path, len(cfg.Balancers), members)
	return ExitOK
}

// warningLines returns app.Check's warnings about the configuration file
// at path as lines in line order: FILE:LINE: warning: message.
func warningLines(path string, warnings []config.FieldError) config.Errors {
	if len(warnings) == 0 {
		return nil
	}
	lines := config.Locate(path, config.FieldErrors(warnings))
	for _, l := range lines {
		l.Msg = "warning: " + l.Msg
	}
	return lines
}
