package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/metrics"
	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/clusterstore"
	"github.com/tetherlb/tether/session/memcachestore"
	"github.com/tetherlb/tether/session/memstore"
	"github.com/tetherlb/tether/session/redisstore"
)

// StorePasswordEnv holds the password of a cart's shared store when no
// password file is given (`tether cart --store`).
const StorePasswordEnv = "TETHER_STORE_PASSWORD"

// CartCluster makes a cart node a node of a replication cluster (the
// flags --cluster, --peers, --replication … of `tether cart`).
type CartCluster struct {
	// Addr is this node's cluster address, host:port for gossip (UDP and
	// TCP) and replication (TCP). Required.
	Addr string
	// Peers are the other nodes' cluster addresses (static membership).
	Peers []string
	// Ack is the replication mode; zero is auto (from the cluster's size).
	Ack cluster.AckMode
	// Name is the cluster's name; clusters with other names ignore each other.
	Name string
	// Key is the shared secret that authenticates and encrypts replication
	// and gossip; nil for none.
	Key []byte
	// Cert, CertKey and CA are PEM files for mutual TLS on replication;
	// all three or none.
	Cert, CertKey, CA string
	// Insecure allows a non-loopback Addr without a key or TLS.
	Insecure bool
	// DrainGrace is how long the node keeps serving after ctx ends while
	// balancers see it drain. Zero: it stops at once.
	DrainGrace time.Duration
	// Lease is the read lease at the majority levels (cluster.Options.Lease):
	// zero for the default, negative for none.
	Lease time.Duration
}

// options returns the store's options for node name.
func (c *CartCluster) options(name string, log *slog.Logger) (clusterstore.Options, error) {
	o := cluster.Options{Name: name, Addr: c.Addr, Peers: c.Peers, ClusterName: c.Name, Ack: c.Ack, Lease: c.Lease, Logger: log}
	var err error
	if c.Key != nil {
		if o.PSK, o.GossipKey, err = clusterstore.DeriveKeys(c.Key); err != nil {
			return clusterstore.Options{}, err
		}
	}
	switch set := c.Cert != "" || c.CertKey != "" || c.CA != ""; {
	case set && (c.Cert == "" || c.CertKey == "" || c.CA == ""):
		return clusterstore.Options{}, fmt.Errorf("--cluster-cert, --cluster-cert-key and --cluster-ca go together")
	case set:
		if o.TLS, err = cluster.TLSConfig(c.Cert, c.CertKey, c.CA); err != nil {
			return clusterstore.Options{}, err
		}
	}
	if o.PSK == nil && o.TLS == nil && !c.Insecure && !config.IsLoopback(c.Addr) {
		return clusterstore.Options{}, fmt.Errorf("--cluster %s is not a loopback address: anyone who reaches it could read and write sessions; "+
			"give --cluster-key-file (or $%s) or TLS, or --cluster-insecure", c.Addr, ClusterKeyEnv)
	}
	if err := o.Validate(); err != nil {
		return clusterstore.Options{}, err
	}
	return clusterstore.Options{Cluster: o}, nil
}

// ClusterKeyEnv holds a cart cluster's shared secret when no key file is
// given (`tether cart --cluster`).
const ClusterKeyEnv = "TETHER_CLUSTER_KEY"

// cartStore is the session store of a cart node: in memory, replicated
// by a cluster, or shared by every node.
type cartStore struct {
	// store is the store itself: give it to the Manager as is, so that it
	// finds the store's optional capabilities (Claimer, Readier, ...).
	store      session.Store
	replicated *clusterstore.Store // nil without a cluster
	close      func()
}

// openNodeStore opens the node's own store: in memory, or with c
// replicated to the peers, with the cluster's metrics on reg. Close the
// store when done.
func openNodeStore(c *CartCluster, name string, maxSessions int, log *slog.Logger, reg prometheus.Registerer) (cartStore, error) {
	if c == nil {
		mem, err := memstore.New(memstore.Options{MaxSessions: maxSessions, Logger: log})
		if err != nil {
			return cartStore{}, usage(err)
		}
		return cartStore{store: mem, close: func() { mem.Close() }}, nil
	}
	o, err := c.options(name, log)
	if err != nil {
		return cartStore{}, usage(err)
	}
	if o.Cluster.Observer, err = metrics.NewClusterCollector(reg); err != nil {
		return cartStore{}, err
	}
	st, err := clusterstore.New(o)
	if err == nil {
		if err = metrics.RegisterClusterView(reg, st.Node().Quorum); err != nil {
			_ = st.Close()
		}
	}
	if err != nil {
		return cartStore{}, err
	}
	log.Info("cart: replicating sessions", "cluster", st.Node().Addr(), "peers", o.Cluster.Peers,
		"mode", st.Node().Info().Mode, "authenticated", o.Cluster.PSK != nil || o.Cluster.TLS != nil) // auto resolved by the cluster's size
	return cartStore{store: st, replicated: st, close: func() { _ = st.Close() }}, nil
}

// openSharedStore opens the store every node shares, at url with pass.
func openSharedStore(ctx context.Context, url, pass string, log *slog.Logger) (cartStore, error) {
	switch scheme, _, _ := strings.Cut(url, "://"); {
	case strings.HasPrefix(scheme, "redis"):
		u, _, err := redisstore.ParseURL(url)
		if err != nil {
			return cartStore{}, usage(fmt.Errorf("--store: %v", err))
		}
		if u.Password != "" {
			log.Warn(fmt.Sprintf("the password in --store shows in the process list; use --store-password-file or $%s", StorePasswordEnv))
		}
		st, err := redisstore.Open(context.WithoutCancel(ctx), url, pass, redisstore.Options{})
		if err != nil {
			return cartStore{}, fmt.Errorf("--store: %v", err)
		}
		log.Info("cart: sessions in Redis, shared by every node", "store", redisstore.Redact(url))
		return cartStore{store: st, close: func() { _ = st.Close() }}, nil
	case scheme == "memcached":
		if pass != "" {
			return cartStore{}, usage(fmt.Errorf("--store %s: memcached takes no password (--store-password-file, $%s)", url, StorePasswordEnv))
		}
		servers, err := memcachestore.ParseURL(url)
		if err != nil {
			return cartStore{}, usage(fmt.Errorf("--store: %v", err))
		}
		st, err := memcachestore.New(servers, memcachestore.Options{})
		if err == nil {
			if err = st.Ping(); err != nil {
				st.Close()
			}
		}
		if err != nil {
			return cartStore{}, fmt.Errorf("--store: %v", err)
		}
		log.Info("cart: sessions in memcached, shared by every node", "servers", servers)
		return cartStore{store: st, close: func() { _ = st.Close() }}, nil
	}
	return cartStore{}, usage(fmt.Errorf("--store %q: want memory, redis://…, rediss://…, redis-sentinel://…, redis-cluster://… or memcached://…", redisstore.Redact(url)))
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

// drainContext returns the context the node serves until: with a
// cluster, it ends c.DrainGrace after ctx, and the app announces its
// drain as soon as ctx ends (SIGTERM); without, it is ctx.
func (s cartStore) drainContext(ctx context.Context, c *CartCluster, app *cart.App) (context.Context, context.CancelFunc) {
	if s.replicated == nil {
		return ctx, func() {}
	}
	return cart.DrainContext(ctx, app.Drain, c.DrainGrace)
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
