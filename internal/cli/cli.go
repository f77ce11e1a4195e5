// Package cli is tether's command line: one file per subcommand, each parsing
// its flags and printing its output. The work itself lives in internal/app and
// the libraries.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
)

// Exit codes every subcommand uses, so that scripts can rely on them.
const (
	ExitOK      = 0 // success
	ExitFailure = 1 // the command ran and failed (a server error, a drain that timed out)
	ExitUsage   = 2 // bad flags, arguments or configuration
)

// Env is what a command may touch of the outside world.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads an environment variable; nil reads none.
	Getenv func(string) string
}

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

// logger returns the text logger commands write to stderr.
func (e Env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.Stderr, nil))
}

type command struct {
	summary string
	run     func(ctx context.Context, env Env, args []string) int
}

// commands lists the subcommands. Each is defined in the file of its name.
var commands = map[string]command{
	"version": {"print the version", runVersion},
	"check":   {"validate a configuration file", runCheck},
	"serve":   {"run the balancer(s) and the manager of a configuration file", runServe},
	"demo":    {"run a balancer, its manager and replicated cart nodes on this machine", runDemo},
	"ctl":     {"drain, stop, enable, weigh, add and remove members through the manager", runCtl},
	"cart":    {"run one node of the example shopping-cart app", runCart},
	"import":  {"print the tether.yaml of an httpd (mod_proxy_balancer) or mod_jk configuration", runImport},
}

// Run runs the command line args (without the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "tether: unknown command %q\n", args[0])
		usage(env.Stderr)
		return ExitUsage
	}
	return cmd.run(ctx, env, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tether <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'tether <command> -h' for a command's flags.")
}

// newFlags returns a flag set that prints to env.Stderr and returns errors
// instead of exiting.
func newFlags(env Env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("tether "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: tether %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args into fs; it returns the exit code to stop with, or -1 to go on.
func parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return ExitOK
		}
		return ExitUsage
	}
	return -1
}
