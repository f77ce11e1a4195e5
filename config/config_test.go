package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/route"
)

func TestLoadFull(t *testing.T) {
	cfg, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Balancers) != 2 || len(cfg.Balancers[0].Members) != 3 {
		t.Fatalf("balancers: %+v", cfg.Balancers)
	}
	b := cfg.Balancers[0]
	if b.Members[1].Weight != 2 || b.Members[2].State != "standby" || b.Health.Rise != 2 ||
		b.Timeouts.Response != 30*time.Second || b.Drain.Deadline != 2*time.Hour || b.Sessions != "replicated" {
		t.Errorf("balancer decoded wrong: %+v", b)
	}
	if cfg.Limits.IdleTimeout != 2*time.Minute || cfg.Manager.ReadOnlyToken != "look-only" || cfg.Engine != "auto" {
		t.Errorf("top level decoded wrong: %+v", cfg)
	}
	if got := cfg.ListenOf(&cfg.Balancers[1]); got != "127.0.0.1:8090" {
		t.Errorf("ListenOf = %q", got)
	}
}

func TestDefaultsApplyToMinimalFile(t *testing.T) {
	cfg, err := Parse("min.yaml", []byte("balancers:\n  - name: b\n    members: [{url: 'http://127.0.0.1:1', route: n1}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.ShutdownTimeout != 30*time.Second || cfg.Manager != nil {
		t.Errorf("defaults: %+v", cfg)
	}
}

// TestSecretForAJPInAnyCase: URL schemes are case-insensitive, so an
// AJP:// member (as an httpd configuration may spell it, and tether import
// copies it) takes a secret; an http member still does not.
func TestSecretForAJPInAnyCase(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"ajp://10.0.0.11:8009", true},
		{"AJP://10.0.0.11:8009", true},
		{"Ajp://10.0.0.11:8009", true},
		{"HTTP://10.0.0.11:8009", false},
	} {
		_, err := Parse("f.yaml", []byte("balancers:\n  - name: b\n    members:\n      - {url: '"+tc.url+"', route: n1, secret_env: AJP_SECRET}\n"))
		if (err == nil) != tc.ok {
			t.Errorf("%s with a secret: %v, want accepted %v", tc.url, err, tc.ok)
		}
	}
}

// TestErrors checks that each mistake is reported on the right line with a
// message naming the problem.
func TestErrors(t *testing.T) {
	const head = "balancers:\n  - name: b\n    members:\n"
	tests := []struct {
		name, yaml string
		want       []string // "LINE: substring", one per expected error
	}{
		{"unknown top-level key", "listn: x\n" + head + "      - {url: 'http://h:1', route: n1}\n",
			[]string{`1: unknown key "listn" in config`}},
		{"unknown member key", head + "      - {url: 'http://h:1', route: n1, wieght: 2}\n",
			[]string{`4: unknown key "wieght" in member`}},
		{"duplicate route", head + "      - {url: 'http://h:1', route: n1}\n      - {url: 'http://h:2', route: n1}\n",
			[]string{`5: balancers[0].members[1].route: duplicate route "n1"`}},
		{"bad url", head + "      - {url: 'ftp://h:1', route: n1}\n",
			[]string{`4: balancers[0].members[0].url: "ftp://h:1": scheme must be http, https or ajp`}},
		{"ajp member off loopback without a secret", head + "      - {url: 'ajp://10.0.0.11:8009', route: n1}\n",
			[]string{`4: balancers[0].members[0].secret_file: ajp member ajp://10.0.0.11:8009 is not on loopback and has no secret`}},
		{"secret for an http member", head + "      - {url: 'http://h:1', route: n1, secret_env: AJP_SECRET}\n",
			[]string{`4: balancers[0].members[0].url: "http://h:1": a secret is for ajp:// members only`}},
		{"both secrets", head + "      - {url: 'ajp://h:1', route: n1, secret_env: A, secret_file: /nonexistent/s}\n",
			[]string{`4: balancers[0].members[0].secret_env: give secret_file or secret_env, not both`, `4: balancers[0].members[0].secret_file: stat /nonexistent/s`}},
		{"bad packet size", "balancers:\n  - name: b\n    ajp: {packet_size: 100000, secret_env: S}\n    members: [{url: 'ajp://h:1', route: n1}]\n",
			[]string{`3: balancers[0].ajp.packet_size: 100000 must be from 1024 to 65536`}},
		{"url without host", head + "      - {url: 'http://', route: n1}\n",
			[]string{`4: balancers[0].members[0].url: "http://" has no host`}},
		{"unknown method", "balancers:\n  - name: b\n    method: random\n    members:\n      - {url: 'http://h:1', route: n1}\n",
			[]string{`3: balancers[0].method: unknown value "random"`}},
		{"unknown state", head + "      - {url: 'http://h:1', route: n1, state: paused}\n",
			[]string{`4: balancers[0].members[0].state: unknown value "paused"`}},
		{"negative weight", head + "      - url: 'http://h:1'\n        route: n1\n        weight: -1\n",
			[]string{`6: balancers[0].members[0].weight: -1 must be from 1 to 1000`}},
		{"duration without unit", "balancers:\n  - name: b\n    timeouts: {connect: 5}\n    members:\n      - {url: 'http://h:1', route: n1}\n",
			[]string{`3: "5" is not a duration`}},
		{"negative duration", "balancers:\n  - name: b\n    timeouts:\n      connect: -1s\n    members:\n      - {url: 'http://h:1', route: n1}\n",
			[]string{`4: balancers[0].timeouts.connect: -1s must not be negative`}},
		{"negative max_conns", "balancers:\n  - name: b\n    max_conns: -2\n    timeouts: {queue: -1s}\n    members:\n      - {url: 'http://h:1', route: n1}\n",
			[]string{`3: balancers[0].max_conns`, `4: balancers[0].timeouts.queue: -1s must not be negative`}},
		{"negative park_after", "limits:\n  idle_timeout: 60s\n  park_after: -10ms\n" + head + "      - {url: 'http://h:1', route: n1}\n",
			[]string{`3: limits.park_after: -10ms must not be negative`}},
		{"not a number", head + "      - {url: 'http://h:1', route: n1, weight: heavy}\n",
			[]string{`4: "heavy" is not a valid whole number here`}},
		{"no balancers", "listen: 127.0.0.1:1\n", []string{`1: balancers: at least one balancer is required`}},
		{"no members", "balancers:\n  - name: b\n", []string{`2: balancers[0].members: at least one member is required`}},
		{"empty file", "", []string{`1: the file is empty`}},
		{"yaml syntax", "balancers: [\n", []string{`1: did not find expected node content`}},
		{"tab indentation", "listen: x\n\tbalancers: []\n", []string{`2: found a tab character`}},
		{"duplicate key", "listen: a:1\nlisten: b:2\n" + head + "      - {url: 'http://h:1', route: n1}\n",
			[]string{`2: mapping key "listen" already defined at line 1`}},
		{"bad listen", "listen: nonsense\n" + head + "      - {url: 'http://h:1', route: n1}\n",
			[]string{`1: listen: "nonsense" is not host:port`}},
		{"bad route", head + "      - {url: 'http://h:1', route: 'n 1'}\n",
			[]string{`4: balancers[0].members[0].route: "n 1": use 1 to 64`}},
		{"missing route", head + "      - {url: 'http://h:1'}\n",
			[]string{`4: balancers[0].members[0].route: a route is required`}},
		{"duplicate balancer", "balancers:\n  - {name: b, path: /a, members: [{url: 'http://h:1', route: n1}]}\n  - {name: b, path: /b, members: [{url: 'http://h:1', route: n1}]}\n",
			[]string{`3: balancers[1].name: duplicate balancer name "b"`}},
		{"same path twice", "balancers:\n  - {name: a, members: [{url: 'http://h:1', route: n1}]}\n  - {name: b, members: [{url: 'http://h:1', route: n1}]}\n",
			[]string{`3: balancers[1].path: balancers[0] already serves path "/"`}},
		{"manager not loopback", "manager: {listen: '0.0.0.0:8081', token: x}\n" + head + "      - {url: 'http://h:1', route: n1}\n",
			[]string{`1: manager.listen: "0.0.0.0:8081" is not a loopback address`}},
		{"bad separator", "balancers:\n  - name: b\n    sticky: {separator: '::'}\n    members: [{url: 'http://h:1', route: n1}]\n",
			[]string{`3: balancers[0].sticky.separator: "::" must be one printable ASCII character`}},
		{"bad trusted proxy", "trusted_proxies: [10.0.0.0/33]\n" + head + "      - {url: 'http://h:1', route: n1}\n",
			[]string{`1: trusted_proxies[0]: "10.0.0.0/33" is not an IP address`}},
		{"unknown engine", "engine: fast\n" + head + "      - {url: 'http://h:1', route: n1}\n",
			[]string{`1: engine: unknown value "fast": use one of auto, native, nethttp`}},
		{"native engine with tls: only the missing files", "engine: native\ntls: {cert: cert.pem, key: key.pem}\n" + head + "      - {url: 'http://h:1', route: n1}\n",
			[]string{`2: tls.cert`, `2: tls.key`}},
		{"two documents", head + "      - {url: 'http://h:1', route: n1}\n---\nlisten: x\n",
			[]string{`5: only one YAML document`}},
		{"decoding and validation errors at once", head + "      - {url: 'ftp://h:1', route: n1, wieght: 2}\n      - {url: 'http://h:2', route: n1, weight: heavy}\n",
			[]string{`4: unknown key "wieght" in member`, `4: balancers[0].members[0].url: "ftp://h:1"`, `5: "heavy" is not a valid whole number`}},
		{"a value of the wrong type is not validated again", "listen: [a, b]\n" + head + "      - {url: 'http://h:1', route: n1}\n      - {url: 'http://h:2', route: n1}\n",
			[]string{`1: a list is not a valid string here`, `6: balancers[0].members[1].route: duplicate route "n1"`}},
		{"several errors at once", head + "      - {url: 'http://h:1', route: n1, weight: 5000}\n      - {url: 'gopher://h', route: n1}\n",
			[]string{`4: balancers[0].members[0].weight`, `5: balancers[0].members[1].url`, `5: balancers[0].members[1].route: duplicate`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.yaml))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %v (%T) is not Errors", err, err)
			}
			if len(es) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(es), len(tt.want), err)
			}
			for i, w := range tt.want {
				if got := es[i].Error(); !strings.HasPrefix(got, "f.yaml:"+w[:strings.IndexByte(w, ':')]+":") || !strings.Contains(got, w[strings.IndexByte(w, ':')+2:]) {
					t.Errorf("error %d = %q, want f.yaml:%s", i, got, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml: open") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadRefusesHugeFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(p, make([]byte, MaxFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestTLSFilesMustExist(t *testing.T) {
	y := "tls: {cert: /nonexistent/cert.pem, key: /nonexistent/key.pem}\nbalancers:\n  - {name: b, members: [{url: 'http://h:1', route: n1}]}\n"
	_, err := Parse("f.yaml", []byte(y))
	if err == nil || !strings.Contains(err.Error(), "f.yaml:1: tls.cert:") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateMember(t *testing.T) {
	tests := []struct {
		name string
		m    Member
		want string // "" for valid
	}{
		{"valid", Member{URL: "http://127.0.0.1:9001", Route: "n1"}, ""},
		{"https with weight", Member{URL: "https://app:8443/ctx", Route: "n1", Weight: 1000, State: "draining"}, ""},
		{"query", Member{URL: "http://h/?a=1", Route: "n1"}, "no user info, query or fragment"},
		{"user info", Member{URL: "http://u:p@h/", Route: "n1"}, "no user info"},
		{"bad port", Member{URL: "http://h:99999", Route: "n1"}, "bad port"},
		{"weight too big", Member{URL: "http://h", Route: "n1", Weight: 1001}, "weight: 1001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateMember(&tt.m)
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("ValidateMember = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8081": true, "[::1]:8081": true, "localhost:1": true, "127.8.9.1:1": true,
		"0.0.0.0:8081": false, ":8081": false, "10.0.0.1:80": false, "example.com:80": false, "bad": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestRouteRuleMatchesRoutePackage keeps config's copy of the route rule
// (config imports nothing from tether) in step with route.Valid.
func TestRouteRuleMatchesRoutePackage(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, s := range []string{string(rune(c)), "n" + string([]byte{byte(c)}), strings.Repeat("a", 64), strings.Repeat("a", 65), ""} {
			if validRoute(s) != route.Valid(s) {
				t.Fatalf("validRoute(%q) = %v, route.Valid = %v", s, validRoute(s), route.Valid(s))
			}
		}
	}
}

// FuzzParse checks that no file makes Parse panic, and that every error
// it reports carries the file name.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/full.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Decoding and validation errors in one file.
	f.Add([]byte("listen: [a]\nbalancers:\n  - name: b\n    max_attempts: many\n    members:\n      - {url: 'ftp://h', route: n1, wieght: 2}\n      - {url: 'http://h:2', route: n1, weight: heavy}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("f.yaml", data)
		if err == nil {
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %v is not a non-empty Errors", err)
		}
		for _, e := range es {
			if !strings.HasPrefix(e.Error(), "f.yaml") {
				t.Fatalf("error without file name: %q", e)
			}
		}
	})
}

// TestLocate: the problems found beyond the file's text are put at the
// lines of their fields, in line order; another error has no line.
func TestLocate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.yaml")
	os.WriteFile(path, []byte("manager:\n  listen: 127.0.0.1:0\nbalancers:\n  - name: b\n    ajp: {secret_env: S}\n    members: [{url: 'ajp://h:1', route: n1}]\n"), 0o600)
	got := Locate(path, FieldErrors{
		{Field: "balancers[0].ajp.secret_env", Msg: "the environment variable S is not set"},
		{Field: "manager", Msg: "no token"},
		{Field: "", Msg: "TETHER_HEAP_FLOOR: want a size"},
	})
	want := path + ": TETHER_HEAP_FLOOR: want a size\n" + path + ":1: manager: no token\n" + path + ":5: balancers[0].ajp.secret_env: the environment variable S is not set"
	if got.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", got, want)
	}
	if got := Locate(path, errors.New("boom")); got.Error() != path+": boom" {
		t.Errorf("a plain error: %v", got)
	}
	if Locate(path, nil) != nil {
		t.Error("nil: not nil")
	}
}
