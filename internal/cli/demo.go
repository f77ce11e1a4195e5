package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/tetherlb/tether/internal/demo"
)

func runDemo(ctx context.Context, env Env, args []string) int {
	fs := newFlags(env, "demo", "[--nodes N] [--store cluster|redis] [--listen ADDR] [--manager ADDR]")
	nodes := fs.Int("nodes", 3, "how many replicated cart nodes to run")
	store := fs.String("store", demo.StoreCluster, "where the cart nodes keep sessions: cluster (replicated between them) or redis (a redis-server the demo starts; it must be installed)")
	listen := fs.String("listen", "127.0.0.1:8080", "the balancer's address (a free port is used if it is taken)")
	manager := fs.String("manager", "127.0.0.1:8081", "the manager's address (a free port is used if it is taken)")
	random := fs.Bool("random-ports", false, "use free ports for everything")
	dir := fs.String("dir", "", "keep configuration, state and logs in this directory (default: a temporary one, removed at exit)")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 || *nodes < 1 || *nodes > 9 {
		fmt.Fprintln(env.Stderr, "tether demo: --nodes must be from 1 to 9")
		return ExitUsage
	}
	if *store != demo.StoreCluster && *store != demo.StoreRedis {
		fmt.Fprintf(env.Stderr, "tether demo: --store %q: want %s or %s\n", *store, demo.StoreCluster, demo.StoreRedis)
		return ExitUsage
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(env.Stderr, "tether demo:", err)
		return ExitFailure
	}
	err = demo.Run(ctx, demo.Options{
		Binary: bin, Nodes: *nodes, Store: *store, Listen: *listen, Manager: *manager, RandomPorts: *random, Dir: *dir,
		Out: env.Stdout, Logger: env.logger(),
	})
	if err != nil {
		fmt.Fprintln(env.Stderr, "tether demo:", err)
		return ExitFailure
	}
	fmt.Fprintln(env.Stdout, "the demo has stopped; no process is left running")
	return ExitOK
}
