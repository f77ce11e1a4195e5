package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetherlb/tether/metrics"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/clusterstore"
	"github.com/tetherlb/tether/session/memstore"
)

// clusterKeyEnv holds the cluster's shared secret when --cluster-key-file
// is not given.
const clusterKeyEnv = "TETHER_CLUSTER_KEY"

// cartCluster holds the flags of `tether cart` that make it a node of a
// replication cluster (docs/architecture.md, "Stable interfaces": --cluster, --peers, --replication).
type cartCluster struct {
	addr, peers, mode, name, keyFile *string
	cert, certKey, ca                *string
	insecure                         *bool
	drainGrace                       *time.Duration
}

func addCartClusterFlags(fs *flag.FlagSet) cartCluster {
	return cartCluster{
		addr:       fs.String("cluster", "", "replicate sessions: this node's cluster address, host:port for gossip (UDP and TCP) and replication (TCP)"),
		peers:      fs.String("peers", "", "with --cluster: comma-separated --cluster addresses of the other nodes (static membership; one live node is enough)"),
		mode:       fs.String("replication", "auto", "with --cluster: majority (a write returns once a majority of the nodes has it; a node cut off from the majority refuses writes, reads and takeovers), sync (once a peer has it), sync-all (once every peer has it), async, or auto: majority with 3 nodes or more, sync with 2"),
		name:       fs.String("cluster-name", "tether", "with --cluster: the cluster's name; clusters with other names ignore each other"),
		keyFile:    fs.String("cluster-key-file", "", "with --cluster: file holding the cluster's shared secret, at least 16 bytes (default $"+clusterKeyEnv+"); authenticates and encrypts replication and gossip"),
		cert:       fs.String("cluster-cert", "", "with --cluster: this node's certificate (PEM) for mutual TLS on replication; needs --cluster-cert-key and --cluster-ca"),
		certKey:    fs.String("cluster-cert-key", "", "with --cluster-cert: its private key (PEM)"),
		ca:         fs.String("cluster-ca", "", "with --cluster-cert: the cluster's CA certificate (PEM); any certificate it signs is a member"),
		insecure:   fs.Bool("cluster-insecure", false, "with --cluster: allow a non-loopback cluster address without a key or TLS"),
		drainGrace: fs.Duration("drain-grace", 5*time.Second, "with --cluster: after SIGTERM, how long the node keeps serving while balancers see it drain (/healthz: 503, Tether-State: draining)"),
	}
}

// enabled reports whether --cluster was given.
func (c cartCluster) enabled() bool { return *c.addr != "" }

// options checks the cluster flags and returns the store's options for
// node name (zero when --cluster is not given), or the mistake in them.
func (c cartCluster) options(env Env, name string, log *slog.Logger) (clusterstore.Options, error) {
	if !c.enabled() {
		for flagName, set := range map[string]bool{"--peers": *c.peers != "", "--cluster-key-file": *c.keyFile != "",
			"--cluster-cert": *c.cert != "", "--cluster-insecure": *c.insecure} {
			if set {
				return clusterstore.Options{}, fmt.Errorf("%s needs --cluster", flagName)
			}
		}
		return clusterstore.Options{}, nil
	}
	ack, err := cluster.ParseAckMode(*c.mode) // auto: the cluster resolves it from its size
	if err != nil {
		return clusterstore.Options{}, fmt.Errorf("--replication: %w", err)
	}
	if *c.drainGrace < 0 {
		return clusterstore.Options{}, fmt.Errorf("--drain-grace %v: want 0 or more", *c.drainGrace)
	}
	o := cluster.Options{Name: name, Addr: *c.addr, Peers: splitList(*c.peers), ClusterName: *c.name, Ack: ack, Logger: log}
	secret, err := c.secret(env)
	if err != nil {
		return clusterstore.Options{}, err
	}
	if secret != nil {
		if o.PSK, o.GossipKey, err = clusterstore.DeriveKeys(secret); err != nil {
			return clusterstore.Options{}, err
		}
	}
	switch set := *c.cert != "" || *c.certKey != "" || *c.ca != ""; {
	case set && (*c.cert == "" || *c.certKey == "" || *c.ca == ""):
		return clusterstore.Options{}, fmt.Errorf("--cluster-cert, --cluster-cert-key and --cluster-ca go together")
	case set:
		if o.TLS, err = cluster.TLSConfig(*c.cert, *c.certKey, *c.ca); err != nil {
			return clusterstore.Options{}, err
		}
	}
	if o.PSK == nil && o.TLS == nil && !*c.insecure && !loopback(*c.addr) {
		return clusterstore.Options{}, fmt.Errorf("--cluster %s is not a loopback address: anyone who reaches it could read and write sessions; "+
			"give --cluster-key-file (or $%s) or TLS, or --cluster-insecure", *c.addr, clusterKeyEnv)
	}
	if err := o.Validate(); err != nil {
		return clusterstore.Options{}, err
	}
	return clusterstore.Options{Cluster: o}, nil
}

// secret reads the shared secret: --cluster-key-file, else the
// environment; surrounding white space (a final newline) is not part of
// it. nil when neither is given.
func (c cartCluster) secret(env Env) ([]byte, error) {
	s := []byte(strings.TrimSpace(env.getenv(clusterKeyEnv)))
	if *c.keyFile != "" {
		b, err := os.ReadFile(*c.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cluster-key-file: %w", err)
		}
		if s = bytes.TrimSpace(b); len(s) == 0 {
			return nil, fmt.Errorf("--cluster-key-file %s is empty", *c.keyFile)
		}
	}
	if len(s) == 0 {
		return nil, nil
	}
	return s, nil
}

// loopback reports whether the host of addr is a loopback IP or localhost.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// cartStore is the session store of a cart node: in memory, or with
// --cluster replicated to the peers.
type cartStore struct {
	// store is the store itself: give it to the Manager as is, so that it
	// finds the store's optional capabilities (Claimer, Readier, ...).
	store      session.Store
	replicated *clusterstore.Store // nil without --cluster
	close      func()
}

// open opens the node's store; code >= 0 is the exit code to stop with
// (the error printed). Close the store when done.
func (c cartCluster) open(env Env, name string, maxSessions int, log *slog.Logger, reg prometheus.Registerer) (cartStore, int) {
	o, err := c.options(env, name, log)
	if err != nil {
		fmt.Fprintln(env.Stderr, "tether cart:", err)
		return cartStore{}, ExitUsage
	}
	if c.enabled() {
		if o.Cluster.Observer, err = metrics.NewClusterCollector(reg); err != nil {
			fmt.Fprintln(env.Stderr, "tether cart:", err)
			return cartStore{}, ExitFailure
		}
	}
	if !c.enabled() {
		mem, err := memstore.New(memstore.Options{MaxSessions: maxSessions, Logger: log})
		if err != nil {
			fmt.Fprintln(env.Stderr, "tether cart:", err)
			return cartStore{}, ExitUsage
		}
		return cartStore{store: mem, close: func() { mem.Close() }}, -1
	}
	st, err := clusterstore.New(o)
	if err == nil {
		if err = metrics.RegisterClusterView(reg, st.Node().Quorum); err != nil {
			_ = st.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "tether cart:", err)
		return cartStore{}, ExitFailure
	}
	log.Info("cart: replicating sessions", "cluster", st.Node().Addr(), "peers", o.Cluster.Peers,
		"mode", st.Node().Info().Mode, "authenticated", o.Cluster.PSK != nil || o.Cluster.TLS != nil) // auto resolved by the cluster's size
	return cartStore{store: st, replicated: st, close: func() { _ = st.Close() }}, -1
}

// Close releases the store; after a handover it has nothing left to do.
func (s cartStore) Close() { s.close() }

// appOptions sets the store in the app's options, with the cluster's
// views (GET /cluster).
func (s cartStore) appOptions(o *cart.Options) {
	o.Store = s.store
	if st := s.replicated; st != nil {
		o.Cluster = func() any { return st.Info() }
		o.SessionCopy = func(id string) (any, error) { return st.Copy(id) }
	}
}

// drainContext returns the context the node serves until: with --cluster,
// it ends --drain-grace after ctx, and the app announces its drain as soon
// as ctx ends (SIGTERM); without, it is ctx.
func (c cartCluster) drainContext(ctx context.Context, s cartStore, app *cart.App) (context.Context, context.CancelFunc) {
	if s.replicated == nil {
		return ctx, func() {}
	}
	return cart.DrainContext(ctx, app.Drain, *c.drainGrace)
}

// handover, once the node serves no more requests, waits (at most
// timeout) until the peers have acknowledged every write of this node, and
// leaves the cluster, so that they take its sessions over at once.
func (s cartStore) handover(timeout time.Duration, log *slog.Logger) error {
	if s.replicated == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.replicated.Handover(ctx); err != nil {
		return fmt.Errorf("handing sessions over: %w", err)
	}
	log.Info("cart: sessions handed over to the peers; left the cluster")
	return nil
}
