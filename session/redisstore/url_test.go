package redisstore

import (
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		addrs   string
		master  string
		cluster bool
		db      int
		user    string
		pass    string
		tls     bool
		prefix  string
		repl    int
		err     string
	}{
		{url: "redis://127.0.0.1", addrs: "127.0.0.1:6379"},
		{url: "redis://u:p%40ss@127.0.0.1:7000/3?prefix=app:", addrs: "127.0.0.1:7000", db: 3, user: "u", pass: "p@ss", prefix: "app:"},
		{url: "rediss://:secret@cache.example:6380", addrs: "cache.example:6380", pass: "secret", tls: true},
		{url: "redis-sentinel://127.0.0.1,127.0.0.1:26380/mymaster/2?replicas=1", addrs: "127.0.0.1:26379,127.0.0.1:26380", master: "mymaster", db: 2, repl: 1},
		{url: "redis-cluster://127.0.0.1:7000,127.0.0.1:7001", addrs: "127.0.0.1:7000,127.0.0.1:7001", cluster: true},
		{url: "rediss-cluster://127.0.0.1:7000", addrs: "127.0.0.1:7000", cluster: true, tls: true},
		{url: "127.0.0.1:6379", err: "not a URL"},
		{url: "http://127.0.0.1", err: "unknown scheme"},
		{url: "redis-foo://127.0.0.1", err: "unknown scheme"},
		{url: "redis://a:1,b:2", err: "several hosts"},
		{url: "redis-sentinel://127.0.0.1", err: "master's name is missing"},
		{url: "redis-cluster://127.0.0.1/1", err: "only database 0"},
		{url: "redis://127.0.0.1/x", err: "not a number"},
		{url: "redis://127.0.0.1:0", err: "bad port"},
		{url: "redis://127.0.0.1:99999", err: "bad port"},
		{url: "redis://", err: "empty host"},
		{url: "redis://127.0.0.1?color=red", err: "unknown option"},
		{url: "redis://:hunter2@127.0.0.1?timeout=soon", err: "option timeout"},
		{url: "redis://127.0.0.1?replicas=-1", err: "Replicas"},
		{url: "redis://127.0.0.1?tls_ca=/etc/ssl/ca.pem", err: "tls_ca needs rediss"},
		{url: "rediss://127.0.0.1?tls_ca=/nonexistent/ca.pem", err: "tls_ca"},
		{url: "redis://127.0.0.1?replicas=1&replica_timeout=5s&timeout=1s", err: "ReplicaTimeout"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			u, o, err := ParseURL(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []any{strings.Join(u.Addrs, ","), u.MasterName, u.IsClusterMode, u.DB, u.Username, u.Password, u.TLSConfig != nil, o.Prefix, o.Replicas}
			want := []any{tc.addrs, tc.master, tc.cluster, tc.db, tc.user, tc.pass, tc.tls, tc.prefix, tc.repl}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("field %d: %v, want %v", i, got[i], want[i])
				}
			}
		})
	}
}

func TestTimeoutOption(t *testing.T) {
	u, o, err := ParseURL("redis://127.0.0.1?timeout=750ms")
	if err != nil {
		t.Fatal(err)
	}
	if o.Timeout != 750*time.Millisecond || u.ReadTimeout != o.Timeout || u.DialTimeout != o.Timeout {
		t.Fatalf("timeouts %v %v %v", o.Timeout, u.ReadTimeout, u.DialTimeout)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://u:hunter2@h:1/0?x=1": "redis://u:xxxxx@h:1/0?x=1",
		"redis://:hunter2@h":          "redis://:xxxxx@h",
		"redis://u@h":                 "redis://u@h",
		"redis://h":                   "redis://h",
		"u:hunter2@h":                 "xxxxx",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseURL: no input panics, and no error repeats the password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"redis://u:pw@127.0.0.1:6379/1?prefix=a", "redis-sentinel://h:1,h:2/m", "redis-cluster://h:1,h:2?timeout=1s", "rediss://:pw@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_, _, err := ParseURL(raw)
		if err == nil {
			return
		}
		if i := strings.Index(raw, "://"); i >= 0 {
			auth := raw[i+3:]
			if j := strings.IndexAny(auth, "/?"); j >= 0 {
				auth = auth[:j]
			}
			if at := strings.LastIndexByte(auth, '@'); at >= 0 {
				if _, pass, ok := strings.Cut(auth[:at], ":"); ok && len(pass) >= 6 && strings.Contains(err.Error(), pass) {
					t.Fatalf("error %q shows the password %q", err, pass)
				}
			}
		}
	})
}

// FuzzDecode: no hash a server returns makes decode panic, and what it
// accepts has a version and the header's fields.
func FuzzDecode(f *testing.F) {
	f.Add("m:v\x001\x00m:r\x00n1\x00m:c\x000\x00m:a\x000\x00m:i\x000\x00m:d\x000\x00k:a\x00x")
	f.Add("m:v\x00x")
	f.Add("k:a")
	f.Fuzz(func(t *testing.T, flat string) {
		parts := strings.Split(flat, "\x00")
		v := make([]any, len(parts))
		for i, p := range parts {
			v[i] = p
		}
		rec, err := decode("id", v)
		if err == nil && (rec.Version == 0 || rec.Values == nil) {
			t.Fatalf("accepted %q as %+v", flat, rec)
		}
	})
}
