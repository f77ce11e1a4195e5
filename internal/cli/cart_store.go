package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/metrics"
	"github.com/tetherlb/tether/session/memcachestore"
	"github.com/tetherlb/tether/session/redisstore"
)

// storePasswordEnv holds the password of --store when
// --store-password-file is not given.
const storePasswordEnv = "TETHER_STORE_PASSWORD"

// cartStoreFlags holds the flags of `tether cart` that put its sessions in
// a store shared by every node (docs/architecture.md, "Stable interfaces": --store).
type cartStoreFlags struct {
	url, passwordFile *string
}

func addCartStoreFlags(fs *flag.FlagSet) cartStoreFlags {
	return cartStoreFlags{
		url: fs.String("store", "memory", "where sessions live: memory (this node only), or a store every node shares: "+
			"redis://[USER@]HOST:PORT[/DB], rediss://…, redis-sentinel://HOST:PORT,…/MASTER, redis-cluster://HOST:PORT,…, memcached://HOST:PORT[,HOST:PORT…]"),
		passwordFile: fs.String("store-password-file", "", "file holding the password of --store (default $"+storePasswordEnv+"); keeps it out of the process list"),
	}
}

// shared reports whether --store names a shared store.
func (f cartStoreFlags) shared() bool { return *f.url != "memory" }

// password reads the store's password: --store-password-file, else the
// environment; surrounding white space is not part of it. "" when neither.
func (f cartStoreFlags) password(env Env) (string, error) {
	if *f.passwordFile == "" {
		return strings.TrimSpace(env.getenv(storePasswordEnv)), nil
	}
	b, err := os.ReadFile(*f.passwordFile)
	if err != nil {
		return "", fmt.Errorf("--store-password-file: %w", err)
	}
	p := strings.TrimSpace(string(b))
	if p == "" {
		return "", fmt.Errorf("--store-password-file %s is empty", *f.passwordFile)
	}
	return p, nil
}

// open opens the shared store; code >= 0 is the exit code to stop with
// (the error printed, naming the flag).
func (f cartStoreFlags) open(ctx context.Context, env Env, c cartCluster, log *slog.Logger) (cartStore, int) {
	fail := func(code int, format string, args ...any) (cartStore, int) {
		fmt.Fprintf(env.Stderr, "tether cart: "+format+"\n", args...)
		return cartStore{}, code
	}
	if c.enabled() {
		return fail(ExitUsage, "--store %s and --cluster exclude each other: sessions live in one or the other", redisstore.Redact(*f.url))
	}
	pass, err := f.password(env)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	switch scheme, _, _ := strings.Cut(*f.url, "://"); {
	case strings.HasPrefix(scheme, "redis"):
		u, _, err := redisstore.ParseURL(*f.url)
		if err != nil {
			return fail(ExitUsage, "--store: %v", err)
		}
		if u.Password != "" {
			fmt.Fprintf(env.Stderr, "tether cart: warning: the password in --store shows in the process list; use --store-password-file or $%s\n", storePasswordEnv)
		}
		st, err := redisstore.Open(context.WithoutCancel(ctx), *f.url, pass, redisstore.Options{})
		if err != nil {
			return fail(ExitFailure, "--store: %v", err)
		}
		log.Info("cart: sessions in Redis, shared by every node", "store", redisstore.Redact(*f.url))
		return cartStore{store: st, close: func() { _ = st.Close() }}, -1
	case scheme == "memcached":
		if pass != "" {
			return fail(ExitUsage, "--store %s: memcached takes no password (--store-password-file, $%s)", *f.url, storePasswordEnv)
		}
		servers, err := memcachestore.ParseURL(*f.url)
		if err != nil {
			return fail(ExitUsage, "--store: %v", err)
		}
		st, err := memcachestore.New(servers, memcachestore.Options{})
		if err == nil {
			if err = st.Ping(); err != nil {
				st.Close()
			}
		}
		if err != nil {
			return fail(ExitFailure, "--store: %v", err)
		}
		log.Info("cart: sessions in memcached, shared by every node", "servers", servers)
		return cartStore{store: st, close: func() { _ = st.Close() }}, -1
	}
	return fail(ExitUsage, "--store %q: want memory, redis://…, rediss://…, redis-sentinel://…, redis-cluster://… or memcached://…", redisstore.Redact(*f.url))
}

// cartMetrics gives the node its session metrics: every session event and
// store call (with its duration), served at GET /metrics.
func cartMetrics(o *cart.Options, reg *prometheus.Registry, log *slog.Logger) error {
	c, err := metrics.NewSessionCollector(reg)
	if err != nil {
		return err
	}
	o.Observer = c
	o.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)})
	return nil
}
