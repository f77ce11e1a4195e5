package cli

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/internal/app"
)

// clusterKeyEnv holds the cluster's shared secret when --cluster-key-file
// is not given.
const clusterKeyEnv = app.ClusterKeyEnv

// cartCluster holds the flags of `tether cart` that make it a node of a
// replication cluster (docs/architecture.md, "Stable interfaces": --cluster, --peers, --replication).
type cartCluster struct {
	addr, peers, mode, name, keyFile *string
	cert, certKey, ca                *string
	insecure                         *bool
	drainGrace, lease                *time.Duration
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
		lease:      fs.Duration("lease", 0, "with --cluster, at the majority levels: the read lease (0: the default, 1s; negative: none, every read is confirmed by a round trip)"),
		drainGrace: fs.Duration("drain-grace", 5*time.Second, "with --cluster: after SIGTERM, how long the node keeps serving while balancers see it drain (/healthz: 503, Tether-State: draining)"),
	}
}

// options checks the cluster flags and returns the node's cluster, nil
// without --cluster, or the mistake in the flags.
func (c cartCluster) options(env Env) (*app.CartCluster, error) {
	if *c.addr == "" {
		for flagName, set := range map[string]bool{"--peers": *c.peers != "", "--cluster-key-file": *c.keyFile != "",
			"--cluster-cert": *c.cert != "", "--cluster-insecure": *c.insecure} {
			if set {
				return nil, fmt.Errorf("%s needs --cluster", flagName)
			}
		}
		return nil, nil
	}
	ack, err := cluster.ParseAckMode(*c.mode) // auto: the cluster resolves it from its size
	if err != nil {
		return nil, fmt.Errorf("--replication: %w", err)
	}
	if *c.drainGrace < 0 {
		return nil, fmt.Errorf("--drain-grace %v: want 0 or more", *c.drainGrace)
	}
	key, err := c.secret(env)
	if err != nil {
		return nil, err
	}
	return &app.CartCluster{Addr: *c.addr, Peers: splitList(*c.peers), Ack: ack, Name: *c.name, Key: key,
		Cert: *c.cert, CertKey: *c.certKey, CA: *c.ca, Insecure: *c.insecure, DrainGrace: *c.drainGrace, Lease: *c.lease}, nil
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
