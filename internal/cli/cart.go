package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/route"
)

// demoTokenEnv holds the token of the demo's control API (set by tether demo).
const demoTokenEnv = "TETHER_DEMO_TOKEN"

func runCart(ctx context.Context, env Env, args []string) int {
	fs := newFlags(env, "cart", "--listen ADDR --route NAME")
	listen := fs.String("listen", "127.0.0.1:9001", "address to serve the cart on")
	name := fs.String("route", "", "this node's route, the suffix of its session ids (required)")
	idle := fs.Duration("idle-timeout", 30*time.Minute, "session idle timeout")
	maxSessions := fs.Int("max-sessions", 100_000, "most sessions kept in memory; beyond, new sessions get 503")
	proxies := fs.String("trusted-proxies", "", "comma-separated IPs or CIDRs whose X-Forwarded-Proto sets the cookie's Secure")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "how long in-flight requests may finish after SIGINT/SIGTERM")
	staleReads := fs.Bool("stale-reads", false, "with --cluster: serve reads of a cart this node cannot confirm (cut off from the majority) from its last known copy, marked stale, instead of 503")
	demoPanel := fs.Bool("demo-panel", false, "show the panel of tether demo on the page (its token comes from $"+demoTokenEnv+")")
	ajpFlags := addCartAJPFlags(fs)
	clusterFlags := addCartClusterFlags(fs)
	storeFlags := addCartStoreFlags(fs)
	code := parse(fs, args)
	if code >= 0 {
		return code
	}
	if *name == "" || fs.NArg() > 0 {
		fs.Usage()
		return ExitUsage
	}
	if !route.Valid(*name) {
		fmt.Fprintf(env.Stderr, "tether cart: --route %q: want 1 to %d letters, digits, '-', '_' or '.'\n", *name, route.MaxLen)
		return ExitUsage
	}
	trusted, err := parsePrefixes(*proxies)
	if err != nil {
		fmt.Fprintln(env.Stderr, "tether cart: --trusted-proxies:", err)
		return ExitUsage
	}
	log := env.logger().With("route", *name)

	// The session store: in memory, this node's sessions only; with
	// --cluster, replicated to the peers, with its readiness for /healthz;
	// with --store, shared by every node.
	reg := prometheus.NewRegistry() // GET /metrics: the sessions' and, with --cluster, the cluster's
	var store cartStore
	if storeFlags.shared() {
		store, code = storeFlags.open(ctx, env, clusterFlags, log)
	} else {
		store, code = clusterFlags.open(env, *name, *maxSessions, log, reg)
	}
	if code >= 0 {
		return code
	}
	defer store.Close()

	o := cart.Options{Route: *name, IdleTimeout: *idle, StaleReads: *staleReads, TrustedProxies: trusted, Logger: log}
	if err := cartMetrics(&o, reg, log); err != nil {
		fmt.Fprintln(env.Stderr, "tether cart:", err)
		return ExitFailure
	}
	if *demoPanel {
		if o.DemoToken = env.getenv(demoTokenEnv); o.DemoToken == "" {
			fmt.Fprintf(env.Stderr, "tether cart: --demo-panel needs the demo's token in $%s\n", demoTokenEnv)
			return ExitUsage
		}
	}
	store.appOptions(&o)
	app, err := cart.New(o)
	if err != nil {
		fmt.Fprintln(env.Stderr, "tether cart:", err)
		return ExitUsage
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(env.Stderr, "tether cart:", err)
		return ExitFailure
	}
	fmt.Fprintf(env.Stdout, "tether cart: node %s listening on http://%s\n", *name, ln.Addr())
	// On SIGTERM a clustered node first announces its drain and keeps
	// serving for --drain-grace, then stops as any node does, then hands
	// its sessions over.
	ctx, stopDrain := clusterFlags.drainContext(ctx, store, app)
	defer stopDrain()
	ctx, stopAJP, code := ajpFlags.start(ctx, env, app, *name, *grace, log)
	if code >= 0 {
		ln.Close()
		return code
	}
	err = errors.Join(cart.Serve(ctx, ln, app, *grace, log), stopAJP())
	if err = errors.Join(err, store.handover(*grace, log)); err != nil {
		fmt.Fprintln(env.Stderr, "tether cart:", err)
		return ExitFailure
	}
	fmt.Fprintf(env.Stdout, "tether cart: node %s stopped\n", *name)
	return ExitOK
}

// parsePrefixes parses a comma-separated list of IPs and CIDR prefixes.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := config.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}
