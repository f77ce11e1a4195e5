// Package dbproc runs real Redis, Valkey and memcached servers for tests:
// Debian's redis-server, redis-sentinel, valkey-server, valkey-sentinel
// and memcached, started on free loopback ports with their data in the
// test's temporary directory, killed when the test ends. A test whose
// binary is missing is skipped with a message naming the Debian package
// (CI installs them: see .ci/run).
//
// Redis and Valkey are two Flavors of the same server: the same topologies
// (standalone, TLS, Sentinel group, Cluster) start with either's binaries,
// through the Flavor's methods; StartRedis and the others are the Redis
// flavor's.
package dbproc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// Need skips t unless the program name is installed, naming the Debian
// package that has it.
func Need(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install %s); CI installs it", name, pkg)
	}
	return p
}

// Flavor is a family of servers that speak RESP and take Redis's
// configuration directives: its value is the prefix of its binaries
// (FLAVOR-server, FLAVOR-sentinel, FLAVOR-cli) and of the Debian packages
// that have them (FLAVOR-server, FLAVOR-sentinel, FLAVOR-tools).
type Flavor string

const (
	// FlavorRedis is Redis: Debian's redis-server 7.0 on bookworm.
	FlavorRedis Flavor = "redis"
	// FlavorValkey is Valkey: valkey-server 8.0, from bookworm-backports
	// on Debian 12.
	FlavorValkey Flavor = "valkey"
)

// Flavors is every flavor, for the tests that run on each.
var Flavors = []Flavor{FlavorRedis, FlavorValkey}

// Each runs test once per flavor, as a subtest named by it (t.Name()/redis,
// t.Name()/valkey): a flavor whose binaries are missing skips only its own.
func Each(t *testing.T, test func(t *testing.T, f Flavor)) {
	t.Helper()
	for _, f := range Flavors {
		t.Run(string(f), func(t *testing.T) { test(t, f) })
	}
}

// need skips t unless the flavor's program prog (server, sentinel, cli) is
// installed, naming its Debian package FLAVOR-pkg.
func (f Flavor) need(t testing.TB, prog, pkg string) string {
	t.Helper()
	pkg = string(f) + "-" + pkg
	if f == FlavorValkey {
		pkg += ", from bookworm-backports on Debian 12"
	}
	return Need(t, string(f)+"-"+prog, pkg)
}

// Redis is one running redis-server or valkey-server (or Sentinel).
type Redis struct {
	*proctest.Proc
	// Addr is its 127.0.0.1:port.
	Addr string
	// Dir is its working directory (persistence files, cluster config).
	Dir string

	bin  string
	args []string
}

// StartRedis starts a redis-server: FlavorRedis.Start.
func StartRedis(t testing.TB, args ...string) *Redis {
	t.Helper()
	return FlavorRedis.Start(t, args...)
}

// Start starts a server of flavor f on a free port with no persistence,
// plus the extra configuration directives in args (each "--name value").
func (f Flavor) Start(t testing.TB, args ...string) *Redis {
	t.Helper()
	r := &Redis{Addr: proctest.FreeAddr(t), Dir: t.TempDir(), bin: f.need(t, "server", "server")}
	_, port, _ := net.SplitHostPort(r.Addr)
	r.args = append([]string{"--bind", "127.0.0.1", "--port", port, "--dir", r.Dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning"}, args...)
	r.start(t)
	return r
}

// Restart starts a killed server again on the same port and directory.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.Kill()
	r.start(t)
}

func (r *Redis) start(t testing.TB) {
	t.Helper()
	r.Proc = proctest.StartCmd(t, filepath.Base(r.bin)+" "+r.Addr, exec.Command(r.bin, r.args...))
	proctest.Eventually(t, 10*time.Second, func() error {
		if r.Exited() {
			t.Fatalf("%s %s exited:\n%s", filepath.Base(r.bin), r.Addr, r.Output())
		}
		_, err := r.Do("PING")
		if err != nil && strings.HasPrefix(err.Error(), "redis: NOAUTH") {
			return nil // up, and wants a password
		}
		return err
	})
}

// Do sends one command to the server and returns its reply as text (an
// array's elements joined by newlines); a Redis error reply is an error.
// It speaks just enough RESP for test set-up, without a client library.
func (r *Redis) Do(args ...string) (string, error) {
	return Command(r.Addr, args...)
}

// Command sends one command to the Redis or Valkey server at addr, as
// Redis.Do.
func Command(addr string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(c))
}

// readReply reads one RESP2 reply.
func readReply(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		var n int
		fmt.Sscan(line[1:], &n)
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		var n int
		fmt.Sscan(line[1:], &n)
		parts := make([]string, 0, max(n, 0))
		for i := 0; i < n; i++ {
			p, err := readReply(br)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// SentinelGroup is a primary, its replicas and the Sentinels watching
// them under the name Master.
type SentinelGroup struct {
	Master    string
	Primary   *Redis
	Replicas  []*Redis
	Sentinels []*Redis
}

// StartSentinelGroup starts a Redis Sentinel group:
// FlavorRedis.StartSentinelGroup.
func StartSentinelGroup(t testing.TB) *SentinelGroup {
	t.Helper()
	return FlavorRedis.StartSentinelGroup(t)
}

// StartSentinelGroup starts a primary with two replicas and three
// Sentinels (quorum 2) that fail it over after 1 second of silence, all of
// flavor f.
func (f Flavor) StartSentinelGroup(t testing.TB) *SentinelGroup {
	t.Helper()
	sentinel := f.need(t, "sentinel", "sentinel")
	g := &SentinelGroup{Master: "tether", Primary: f.Start(t)}
	host, port, _ := net.SplitHostPort(g.Primary.Addr)
	for range 2 {
		g.Replicas = append(g.Replicas, f.Start(t, "--replicaof", host, port))
	}
	for range 3 {
		r := &Redis{Addr: proctest.FreeAddr(t), Dir: t.TempDir()}
		_, sport, _ := net.SplitHostPort(r.Addr)
		conf := filepath.Join(r.Dir, "sentinel.conf")
		text := fmt.Sprintf("port %s\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"+
			"sentinel monitor %s %s %s 2\nsentinel down-after-milliseconds %s 1000\n"+
			"sentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 2\n",
			sport, r.Dir, g.Master, host, port, g.Master, g.Master, g.Master)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		r.bin, r.args = sentinel, []string{conf}
		r.start(t)
		g.Sentinels = append(g.Sentinels, r)
	}
	// Ready once both replicas are online, and every Sentinel knows them
	// and the other Sentinels.
	proctest.Eventually(t, 30*time.Second, func() error {
		out, err := g.Primary.Do("INFO", "replication")
		if err != nil {
			return err
		}
		if n := strings.Count(out, "state=online"); n != 2 {
			return fmt.Errorf("%d replicas online", n)
		}
		return nil
	})
	for _, s := range g.Sentinels {
		proctest.Eventually(t, 30*time.Second, func() error {
			out, err := s.Do("SENTINEL", "MASTER", g.Master)
			if err != nil {
				return err
			}
			f := strings.Split(out, "\n")
			for i := 0; i+1 < len(f); i += 2 {
				if f[i] == "num-slaves" && f[i+1] != "2" || f[i] == "num-other-sentinels" && f[i+1] != "2" {
					return fmt.Errorf("sentinel %s: %s = %s", s.Addr, f[i], f[i+1])
				}
			}
			return nil
		})
	}
	return g
}

// SentinelAddrs returns the Sentinels' addresses.
func (g *SentinelGroup) SentinelAddrs() []string {
	var out []string
	for _, s := range g.Sentinels {
		out = append(out, s.Addr)
	}
	return out
}

// PrimaryAddr asks the first live Sentinel for the current primary.
func (g *SentinelGroup) PrimaryAddr() (string, error) {
	var err error
	for _, s := range g.Sentinels {
		var out string
		if out, err = s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.Master); err == nil {
			hp := strings.Split(out, "\n")
			if len(hp) == 2 {
				return net.JoinHostPort(hp[0], hp[1]), nil
			}
			err = fmt.Errorf("sentinel %s: %q", s.Addr, out)
		}
	}
	return "", err
}

// Cluster is a Redis (or Valkey) Cluster of three primaries with a
// replica each.
type Cluster struct {
	Nodes []*Redis
}

// StartCluster starts a Redis Cluster: FlavorRedis.StartCluster.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return FlavorRedis.StartCluster(t)
}

// StartCluster starts six cluster-enabled servers of flavor f and joins
// them with its cli's --cluster create (three primaries, one replica each;
// a dead primary's replica takes over after 1 second).
func (f Flavor) StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli := f.need(t, "cli", "tools")
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for range 6 {
		_, bus, _ := net.SplitHostPort(proctest.FreeAddr(t)) // not port+10000, which may be taken
		r := f.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--cluster-port", bus)
		c.Nodes = append(c.Nodes, r)
		args = append(args, r.Addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s --cluster create: %v\n%s", filepath.Base(cli), err, out)
	}
	for _, r := range c.Nodes {
		proctest.Eventually(t, 60*time.Second, func() error {
			out, err := r.Do("CLUSTER", "INFO")
			if err != nil {
				return err
			}
			if !strings.Contains(out, "cluster_state:ok") || !strings.Contains(out, "cluster_known_nodes:6") {
				return fmt.Errorf("%s: cluster not ready", r.Addr)
			}
			return nil
		})
	}
	c.WaitReplicas(t)
	return c
}

// WaitReplicas waits until every primary has a replica online.
func (c *Cluster) WaitReplicas(t testing.TB) {
	t.Helper()
	proctest.Eventually(t, 60*time.Second, func() error {
		ps := c.Primaries()
		if len(ps) != 3 {
			return fmt.Errorf("%d primaries", len(ps))
		}
		for _, p := range ps {
			out, err := p.Do("INFO", "replication")
			if err != nil {
				return err
			}
			if !strings.Contains(out, "state=online") {
				return fmt.Errorf("%s: no replica online", p.Addr)
			}
		}
		return nil
	})
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, r := range c.Nodes {
		out = append(out, r.Addr)
	}
	return out
}

// Primaries returns the nodes that are primaries now.
func (c *Cluster) Primaries() []*Redis {
	var out []*Redis
	for _, r := range c.Nodes {
		if r.Exited() {
			continue
		}
		if out2, err := r.Do("ROLE"); err == nil && strings.HasPrefix(out2, "master") {
			out = append(out, r)
		}
	}
	return out
}

// Memcached is one running memcached.
type Memcached struct {
	*proctest.Proc
	// Addr is its 127.0.0.1:port.
	Addr string
}

// StartMemcached starts a memcached with 64 MiB of memory on a free port.
func StartMemcached(t testing.TB) *Memcached {
	t.Helper()
	m := &Memcached{Addr: proctest.FreeAddr(t)}
	m.start(t)
	return m
}

// Restart starts a killed memcached again on the same port, empty.
func (m *Memcached) Restart(t testing.TB) {
	t.Helper()
	m.Kill()
	m.start(t)
}

func (m *Memcached) start(t testing.TB) {
	t.Helper()
	bin := Need(t, "memcached", "memcached")
	_, port, _ := net.SplitHostPort(m.Addr)
	args := []string{"-l", "127.0.0.1", "-p", port, "-U", "0", "-m", "64"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses root without it
	}
	m.Proc = proctest.StartCmd(t, "memcached "+m.Addr, exec.Command(bin, args...))
	proctest.Eventually(t, 10*time.Second, func() error {
		if m.Exited() {
			t.Fatalf("memcached %s exited:\n%s", m.Addr, m.Output())
		}
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}
