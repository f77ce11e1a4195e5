package cli

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/route"
	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/memstore"
)

func runCart(ctx context.Context, env Env, args []string) int {
	fs := newFlags(env, "cart", "--listen ADDR --route NAME")
	listen := fs.String("listen", "127.0.0.1:9001", "address to serve the cart on")
	name := fs.String("route", "", "this node's route, the suffix of its session ids (required)")
	idle := fs.Duration("idle-timeout", 30*time.Minute, "session idle timeout")
	maxSessions := fs.Int("max-sessions", 100_000, "most sessions kept in memory; beyond, new sessions get 503")
	proxies := fs.String("trusted-proxies", "", "comma-separated IPs or CIDRs whose X-Forwarded-Proto sets the cookie's Secure")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "how long in-flight requests may finish after SIGINT/SIGTERM")
	if code := parse(fs, args); code >= 0 {
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

	// The session store: in memory, this node's sessions only. A replicated
	// store plugs in here (--cluster), with its readiness for /healthz.
	mem, err := memstore.New(memstore.Options{MaxSessions: *maxSessions, Logger: log})
	if err != nil {
		fmt.Fprintln(env.Stderr, "tether cart:", err)
		return ExitUsage
	}
	defer mem.Close()
	var store session.Store = mem

	app, err := cart.New(cart.Options{Route: *name, Store: store, IdleTimeout: *idle, TrustedProxies: trusted, Logger: log})
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
	if err := cart.Serve(ctx, ln, app, *grace, log); err != nil {
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
