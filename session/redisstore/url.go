package redisstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ParseURL reads a store URL into the client's options and the Store's:
//
//	redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]             a standalone server (port 6379)
//	rediss://…                                                        the same over TLS
//	redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT],…/MASTER[/DB][?…]  the primary Sentinel names MASTER (port 26379)
//	redis-cluster://[[USER]:PASSWORD@]HOST[:PORT],…[?OPTIONS]         a Redis Cluster, from any of its nodes
//
// (rediss-sentinel and rediss-cluster use TLS). USER and PASSWORD are the
// data nodes' (ACL user, requirepass); a password is better given apart,
// from a file or the environment, so that it shows in no command line:
// set the result's Password. OPTIONS are prefix (Options.Prefix), replicas
// and replica_timeout (Options.Replicas, ReplicaTimeout), timeout
// (Options.Timeout, and the client's dial, read and write timeouts),
// pool_size, client_name, and tls_ca (a PEM file of the CAs to trust
// instead of the system's, with rediss). Errors never repeat the password.
func ParseURL(raw string) (*redis.UniversalOptions, Options, error) {
	var o Options
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, o, fmt.Errorf("redisstore: %q: not a URL (redis://HOST:PORT, redis-sentinel://…, redis-cluster://…)", Redact(raw))
	}
	kind, secure := strings.CutPrefix(scheme, "rediss")
	if !secure {
		kind, _ = strings.CutPrefix(scheme, "redis")
	}
	if kind != "" && kind != "-sentinel" && kind != "-cluster" || !strings.HasPrefix(scheme, "redis") {
		return nil, o, fmt.Errorf("redisstore: %q: unknown scheme %q (redis, rediss, redis-sentinel, redis-cluster)", Redact(raw), scheme)
	}
	rest, query, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	// Fail fast when Redis is down: the Manager answers 503 at once and
	// the client tries again, rather than every request waiting through
	// the client's retries (3 commands × 5 dials by default: 1.7 s).
	u := &redis.UniversalOptions{MaxRetries: 1, DialerRetries: 1}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		user, pass, _ := strings.Cut(authority[:at], ":")
		var err1, err2 error
		u.Username, err1 = url.PathUnescape(user)
		u.Password, err2 = url.PathUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, o, fmt.Errorf("redisstore: %q: bad escape in the user or password", Redact(raw))
		}
		authority = authority[at+1:]
	}
	port := "6379"
	if kind == "-sentinel" {
		port = "26379"
	}
	for _, h := range strings.Split(authority, ",") {
		addr, err := hostPort(h, port)
		if err != nil {
			return nil, o, fmt.Errorf("redisstore: %q: %w", Redact(raw), err)
		}
		u.Addrs = append(u.Addrs, addr)
	}
	if len(u.Addrs) > 1 && kind == "" {
		return nil, o, fmt.Errorf("redisstore: %q: several hosts: use redis-sentinel:// or redis-cluster://", Redact(raw))
	}
	if err := applyPath(u, kind, path); err != nil {
		return nil, o, fmt.Errorf("redisstore: %q: %w", Redact(raw), err)
	}
	if secure {
		host, _, _ := net.SplitHostPort(u.Addrs[0])
		u.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	if err := applyQuery(query, u, &o); err != nil {
		return nil, o, fmt.Errorf("redisstore: %q: %w", Redact(raw), err)
	}
	if ca := mustQuery(query).Get("tls_ca"); ca != "" {
		if !secure {
			return nil, o, fmt.Errorf("redisstore: %q: tls_ca needs rediss://", Redact(raw))
		}
		pool, err := loadCA(ca)
		if err != nil {
			return nil, o, fmt.Errorf("redisstore: %q: tls_ca: %w", Redact(raw), err)
		}
		u.TLSConfig.RootCAs = pool
	}
	return u, o, o.Validate()
}

// applyPath reads the URL's path: the master's name (Sentinel), then the
// database number.
func applyPath(u *redis.UniversalOptions, kind, path string) error {
	parts := strings.Split(path, "/")
	if path == "" {
		parts = nil
	}
	switch kind {
	case "-sentinel":
		if len(parts) == 0 || parts[0] == "" {
			return fmt.Errorf("the master's name is missing (redis-sentinel://HOST:PORT,…/MASTER)")
		}
		u.MasterName, parts = parts[0], parts[1:]
	case "-cluster":
		u.IsClusterMode = true
		if len(parts) > 0 {
			return fmt.Errorf("a Redis Cluster has only database 0: no path")
		}
	}
	if len(parts) > 1 {
		return fmt.Errorf("path %q: only a database number", path)
	}
	if len(parts) == 1 && parts[0] != "" {
		db, err := strconv.Atoi(parts[0])
		if err != nil || db < 0 {
			return fmt.Errorf("database %q is not a number", parts[0])
		}
		u.DB = db
	}
	return nil
}

// hostPort checks one HOST[:PORT] and adds the default port.
func hostPort(h, port string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("empty host")
	}
	host, p, err := net.SplitHostPort(h)
	if err != nil {
		host, p = h, port
	}
	if strings.ContainsAny(host, "/@?#[] ") || host == "" {
		return "", fmt.Errorf("bad host %q", h)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad port in %q", h)
	}
	return net.JoinHostPort(host, p), nil
}

// applyQuery reads the URL's options.
func applyQuery(query string, u *redis.UniversalOptions, o *Options) error {
	q, err := url.ParseQuery(query)
	if err != nil {
		return fmt.Errorf("bad query: %w", err)
	}
	for name, vs := range q {
		v := vs[len(vs)-1]
		var err error
		switch name {
		case "prefix":
			o.Prefix = v
		case "replicas":
			o.Replicas, err = strconv.Atoi(v)
		case "replica_timeout":
			o.ReplicaTimeout, err = time.ParseDuration(v)
		case "timeout":
			o.Timeout, err = time.ParseDuration(v)
			u.DialTimeout, u.ReadTimeout, u.WriteTimeout = o.Timeout, o.Timeout, o.Timeout
		case "pool_size":
			u.PoolSize, err = strconv.Atoi(v)
		case "client_name":
			u.ClientName = v
		case "tls_ca": // read by ParseURL once the scheme is known
		default:
			return fmt.Errorf("unknown option %q (prefix, replicas, replica_timeout, timeout, pool_size, client_name, tls_ca)", name)
		}
		if err != nil {
			return fmt.Errorf("option %s=%q: %w", name, v, err)
		}
	}
	return nil
}

// mustQuery parses a query applyQuery has accepted.
func mustQuery(query string) url.Values {
	q, _ := url.ParseQuery(query)
	return q
}

// loadCA reads a PEM file of CA certificates.
func loadCA(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// Redact returns the store URL raw with its password, if any, replaced by
// "xxxxx", for logs and errors.
func Redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if strings.Contains(raw, "@") {
			return "xxxxx"
		}
		return raw
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(authority[:at], ":")
	if !hasPass {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + authority[at:] + tail
}

// Open connects to the store URL raw (see ParseURL) and returns a Store
// that owns its client: Close closes it. password, when not empty,
// replaces the URL's. o's non-zero fields override the URL's options. Open
// checks that the server answers and accepts the credentials, so that a
// wrong address or password is an error at startup, not at the first
// request.
func Open(ctx context.Context, raw, password string, o Options) (*Store, error) {
	u, uo, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	if password != "" {
		u.Password = password
	}
	o = merge(uo, o)
	if err := o.Validate(); err != nil {
		return nil, err
	}
	c := redis.NewUniversalClient(u)
	s, err := New(c, o)
	if err != nil {
		c.Close()
		return nil, err
	}
	s.owned = true
	pctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redisstore: %s: %w", Redact(raw), err)
	}
	return s, nil
}

// merge returns base with the non-zero fields of over.
func merge(base, over Options) Options {
	if over.Prefix != "" {
		base.Prefix = over.Prefix
	}
	if over.Timeout != 0 {
		base.Timeout = over.Timeout
	}
	if over.Replicas != 0 {
		base.Replicas = over.Replicas
	}
	if over.ReplicaTimeout != 0 {
		base.ReplicaTimeout = over.ReplicaTimeout
	}
	if over.MaxRecordBytes != 0 {
		base.MaxRecordBytes = over.MaxRecordBytes
	}
	if over.LockLease != 0 {
		base.LockLease = over.LockLease
	}
	if over.LockPoll != 0 {
		base.LockPoll = over.LockPoll
	}
	if over.Now != nil {
		base.Now = over.Now
	}
	return base
}

// Close closes the client if the Store opened it (Open); a Store from New
// leaves its client to the caller.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	return s.c.Close()
}
