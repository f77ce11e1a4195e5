package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/internal/app"
	"github.com/tetherlb/tether/route"
)

// demoTokenEnv holds the token of the demo's control API (set by tether demo).
const demoTokenEnv = "TETHER_DEMO_TOKEN"

// runCart parses the flags of `tether cart` into app.CartOptions; the
// node is wired and run by app.RunCart.
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
	fail := func(code int, err error) int {
		fmt.Fprintln(env.Stderr, "tether cart:", err)
		return code
	}
	if !route.Valid(*name) {
		return fail(ExitUsage, fmt.Errorf("--route %q: want 1 to %d letters, digits, '-', '_' or '.'", *name, route.MaxLen))
	}
	trusted, err := parsePrefixes(*proxies)
	if err != nil {
		return fail(ExitUsage, fmt.Errorf("--trusted-proxies: %w", err))
	}
	o := app.CartOptions{
		Listen: *listen, Route: *name, IdleTimeout: *idle, MaxSessions: *maxSessions, TrustedProxies: trusted, StaleReads: *staleReads,
		ShutdownTimeout: *grace, Logger: env.logger().With("route", *name), Stdout: env.Stdout,
	}
	if *demoPanel {
		if o.DemoToken = env.getenv(demoTokenEnv); o.DemoToken == "" {
			return fail(ExitUsage, fmt.Errorf("--demo-panel needs the demo's token in $%s", demoTokenEnv))
		}
	}
	if o.Cluster, err = clusterFlags.options(env); err != nil {
		return fail(ExitUsage, err)
	}
	if o.Store, o.StorePassword, err = storeFlags.options(env, o.Cluster != nil); err != nil {
		return fail(ExitUsage, err)
	}
	if o.AJP, o.AJPSecret, err = ajpFlags.options(env); err != nil {
		return fail(ExitUsage, err)
	}
	if err := app.RunCart(ctx, o); err != nil {
		if errors.Is(err, app.ErrConfig) {
			return fail(ExitUsage, err)
		}
		return fail(ExitFailure, err)
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
