package demo

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The stores the demo's cart nodes can keep their sessions in.
const (
	// StoreCluster: the nodes replicate their sessions to each other
	// (tether cart --cluster), the default.
	StoreCluster = "cluster"
	// StoreRedis: the nodes share one redis-server the demo starts
	// (tether cart --store redis://…).
	StoreRedis = "redis"
)

// redisInstallHint says how to get redis-server where it is missing.
const redisInstallHint = "tether demo --store redis needs redis-server on the PATH: " +
	"apt-get install redis-server (Debian, Ubuntu), dnf install redis (Fedora), brew install redis (macOS); " +
	"or run the demo without --store (replicated sessions need nothing else)"

// planRedis prepares a redis-server on a free loopback port, with a
// random password in its configuration file (never on a command line),
// and returns the URL and environment the cart nodes use.
func (d *demo) planRedis() (url string, env []string, err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("%s", redisInstallHint)
	}
	addr := d.port("", "127.0.0.1:6390")
	host, port, _ := net.SplitHostPort(addr)
	password := randomHex(16)
	dir := filepath.Join(d.opts.Dir, "redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "redis.conf")
	text := fmt.Sprintf("bind %s\nport %s\ndir %s\nrequirepass %s\nappendonly yes\nappendfsync always\nsave \"\"\nprotected-mode yes\n",
		host, port, dir, password)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", nil, err
	}
	d.redis = &proc{name: "redis", args: []string{conf}, log: logPath(d.opts.Dir, "redis")}
	d.redisBin, d.redisAddr = bin, addr
	return "redis://" + addr + "/0", []string{"TETHER_STORE_PASSWORD=" + password}, nil
}

// startRedis starts the redis-server, if the demo has one, and waits
// until it accepts connections.
func (d *demo) startRedis(ctx context.Context) error {
	if d.redis == nil {
		return nil
	}
	if err := d.redis.start(d.sp, d.redisBin); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for delay := 10 * time.Millisecond; ; delay = min(delay*2, 250*time.Millisecond) {
		if c, err := net.DialTimeout("tcp", d.redisAddr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if !d.redis.state().Running {
			return fmt.Errorf("redis-server exited while starting:\n%s", d.redis.tail(20))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("redis-server is not ready at %s:\n%s", d.redisAddr, d.redis.tail(20))
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay): // polling interval
		}
	}
}

// storeLine describes the sessions' store in the welcome text.
func (d *demo) storeLine() string {
	if d.redis != nil {
		return fmt.Sprintf("  Sessions in Redis:            %s (redis-server, password in %s)\n", d.redisAddr,
			strings.TrimPrefix(d.redis.args[0], d.opts.Dir+string(os.PathSeparator)))
	}
	return ""
}
