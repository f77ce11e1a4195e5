package cli

import (
	"context"
	"fmt"

	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/internal/app"
)

// runCheck validates a configuration file as `tether serve` loads it at
// start: the file itself (config.Load), then everything it names, read
// from disk and from this process's environment by the code serve runs
// (app.Check): secrets, tokens, cookie keys, the group's key, the state
// file, certificates, keys and CA files. It binds no port, writes no
// file, starts nothing and contacts no peer.
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
	if err := app.Check(cfg, app.ServeOptions{ConfigPath: *path, Getenv: env.getenv}); err != nil {
		printConfigErrors(env, config.Locate(*path, err))
		return ExitUsage
	}
	members := 0
	for _, b := range cfg.Balancers {
		members += len(b.Members)
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%d balancers, %d members)\n", *path, len(cfg.Balancers), members)
	return ExitOK
}
