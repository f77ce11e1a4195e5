package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/metrics"
)

// CartOptions configure RunCart: one node of the example cart app, as the
// flags of `tether cart` describe it (its errors name those flags).
type CartOptions struct {
	// Listen is the address of the cart's HTTP server. Required.
	Listen string
	// Route is the node's route, the suffix of its session ids. Required.
	Route string
	// IdleTimeout is the sessions' idle timeout. Zero: the session library's default.
	IdleTimeout time.Duration
	// MaxSessions bounds the sessions kept in memory (the in-memory store
	// only); beyond, new sessions get 503. Zero: memstore's default.
	MaxSessions int
	// TrustedProxies are the sources whose X-Forwarded-Proto sets the
	// cookie's Secure. None by default.
	TrustedProxies []netip.Prefix
	// ShutdownTimeout is how long requests in flight may finish once ctx
	// ends; the same bounds the handover. Zero: none may.
	ShutdownTimeout time.Duration
	// StaleReads serves reads of a cart this node cannot confirm (cut off
	// from its cluster's majority) from its last known copy, marked stale
	// (cart.Options.StaleReads).
	StaleReads bool
	// DemoToken, if set, shows the panel of tether demo on the page.
	DemoToken string
	// Store is where sessions live: "" or "memory" for this node only
	// (replicated with Cluster), else the URL of a store every node shares
	// (redis://, rediss://, redis-sentinel://, redis-cluster://,
	// memcached://). StorePassword is its password, "" for none.
	Store, StorePassword string
	// Cluster, if set, replicates the in-memory sessions to the peers.
	Cluster *CartCluster
	// AJP, if set, is an address to serve the cart on over AJP13 too,
	// with AJPSecret (required then), the web server's worker secret.
	AJP, AJPSecret string
	// Logger receives the node's log. Required.
	Logger *slog.Logger
	// Stdout receives the lines saying where the node listens and that it
	// stopped. Default: none.
	Stdout io.Writer
}

// cartError marks the errors of RunCart that a change of its options
// fixes: errors.Is(err, ErrConfig) holds, and the message is the
// mistake's alone.
type cartError struct{ err error }

func (e cartError) Error() string   { return e.err.Error() }
func (e cartError) Unwrap() []error { return []error{e.err, ErrConfig} }

// usage returns err marked as a mistake in the options.
func usage(err error) error { return cartError{err} }

// RunCart runs a node of the cart app until ctx ends: its session store
// (in memory, replicated by a cluster, or shared), its metrics, the app
// on Listen and, if set, on AJP; then, with a cluster, it drains for
// Cluster.DrainGrace, stops serving and hands its sessions over.
func RunCart(ctx context.Context, o CartOptions) error {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	log := o.Logger
	reg := prometheus.NewRegistry() // GET /metrics: the sessions' and, with a cluster, the cluster's
	var store cartStore
	var err error
	if o.Store != "" && o.Store != "memory" {
		store, err = openSharedStore(ctx, o.Store, o.StorePassword, log)
	} else {
		store, err = openNodeStore(o.Cluster, o.Route, o.MaxSessions, log, reg)
	}
	if err != nil {
		return err
	}
	defer store.Close()

	co := cart.Options{Route: o.Route, IdleTimeout: o.IdleTimeout, StaleReads: o.StaleReads, TrustedProxies: o.TrustedProxies,
		Logger: log, DemoToken: o.DemoToken}
	if err := cartMetrics(&co, reg, log); err != nil {
		return err
	}
	store.appOptions(&co)
	app, err := cart.New(co)
	if err != nil {
		return usage(err)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, "tether cart: node %s listening on http://%s\n", o.Route, ln.Addr())
	// On SIGTERM a clustered node first announces its drain and keeps
	// serving for the drain grace, then stops as any node does, then
	// hands its sessions over.
	ctx, stopDrain := store.drainContext(ctx, o.Cluster, app)
	defer stopDrain()
	ctx, stopAJP, err := serveCartAJP(ctx, o, app)
	if err != nil {
		ln.Close()
		return err
	}
	err = errors.Join(cart.Serve(ctx, ln, app, o.ShutdownTimeout, log), stopAJP())
	return errors.Join(err, store.handover(o.ShutdownTimeout, log))
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
