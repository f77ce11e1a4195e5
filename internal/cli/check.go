package cli

import (
	"context"
	"fmt"

	"github.com/tetherlb/tether/config"
)

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
	members := 0
	for _, b := range cfg.Balancers {
		members += len(b.Members)
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%d balancers, %d members)\n", *path, len(cfg.Balancers), members)
	return ExitOK
}
