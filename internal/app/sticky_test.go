package app

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/balancer"
)

var (
	keyA = strings.Repeat("a", 40)
	keyB = strings.Repeat("b", 40)
)

// TestStickyOptions: the sticky keys of a balancer reach balancer.Options.
func TestStickyOptions(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "cookie.key")
	os.WriteFile(keys, []byte(keyB+"\n"+keyA+"\n"), 0o600)
	getenv := func(k string) string { return map[string]string{"TETHER_TEST_KEY": keyA}[k] }
	const m = "    members: [{url: 'http://127.0.0.1:1', route: n1}]\n"
	tests := []struct {
		name, yaml string
		check      func(o balancer.Options) bool
	}{
		{"route by default", "  - name: b\n" + m, func(o balancer.Options) bool {
			return o.Sticky == balancer.StickyRoute && o.Separator == 0
		}},
		{"prefix", "  - name: b\n    sticky: {mode: prefix, names: [PHPSESSID], separator: '!'}\n" + m, func(o balancer.Options) bool {
			return o.Sticky == balancer.StickyPrefix && o.Separator == '!' && o.StickyNames[0] == "PHPSESSID"
		}},
		{"insert, defaults", "  - name: b\n    path: /shop\n    sticky: {mode: insert, cookie: {key_env: TETHER_TEST_KEY}}\n" + m, func(o balancer.Options) bool {
			c := o.Cookie
			return o.Sticky == balancer.StickyInsert && len(c.Keys) == 1 && string(c.Keys[0]) == keyA && c.Path == "/shop" &&
				c.Name == "" && c.Secure == balancer.SecureAuto && c.SameSite == 0 && !c.Script
		}},
		{"insert, every key", "  - name: b\n    sticky:\n      mode: insert\n      cookie: {name: LB, key_file: " + keys +
			", path: /, domain: example.com, secure: always, http_only: false, same_site: strict, max_idle: 30m, max_life: 8h, no_cache: true}\n" + m,
			func(o balancer.Options) bool {
				c := o.Cookie
				return len(c.Keys) == 2 && string(c.Keys[0]) == keyB && c.Name == "LB" && c.Path == "/" && c.Domain == "example.com" &&
					c.Secure == balancer.SecureAlways && c.Script && c.SameSite == http.SameSiteStrictMode &&
					c.MaxIdle == 30*time.Minute && c.MaxLife == 8*time.Hour && c.NoCache
			}},
		{"insert, no SameSite", "  - name: b\n    sticky: {mode: insert, cookie: {key_env: TETHER_TEST_KEY, same_site: 'off', secure: never}}\n" + m,
			func(o balancer.Options) bool {
				return o.Cookie.SameSite == http.SameSiteDefaultMode && o.Cookie.Secure == balancer.SecureNever
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, "balancers:\n"+tt.yaml)
			o, err := balancerOptions(&cfg, 0, slog.New(slog.DiscardHandler), nil, getenv)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(o) {
				t.Errorf("options %+v", o)
			}
			if _, err := balancer.New(o, nil); err != nil {
				t.Errorf("the balancer refuses them: %v", err)
			}
		})
	}
}

// TestInsertKeysRotateOnReload: a reload reads the key file again; a key
// put first signs new cookies while the old one still verifies, until it
// is removed.
func TestInsertKeysRotateOnReload(t *testing.T) {
	one, two := named(t, "one"), named(t, "two")
	keys := filepath.Join(t.TempDir(), "cookie.key")
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\nbalancers:\n  - name: b\n    sticky: {mode: insert, cookie: {key_file: %s}}\n    members: [{url: %q, route: n1}, {url: %q, route: n2}]\n", keys, one.URL, two.URL)
	writeKeys := func(ks ...string) {
		if err := os.WriteFile(keys, []byte(strings.Join(ks, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeKeys(keyA)
	s, base := start(t, parse(t, yaml))
	c := &http.Client{}
	send := func(cookie string) (member, set string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base, nil)
		if cookie != "" {
			req.Header.Set("Cookie", "TETHERID="+cookie)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, ck := range resp.Cookies() {
			if ck.Name == "TETHERID" {
				set = ck.Value
			}
		}
		return resp.Header.Get("X-Member"), set
	}
	member, old := send("")
	if !strings.HasPrefix(old, map[string]string{"one": "n1~", "two": "n2~"}[member]) {
		t.Fatalf("served by %s, cookie %q", member, old)
	}
	writeKeys(keyB, keyA)
	if err := s.Reload(parse(t, yaml), time.Second); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if m, set := send(old); m != member || set != "" {
			t.Fatalf("old key kept for verification: served by %s (want %s), new cookie %q", m, member, set)
		}
	}
	writeKeys(keyB)
	if err := s.Reload(parse(t, yaml), time.Second); err != nil {
		t.Fatal(err)
	}
	if _, set := send(old); set == "" {
		t.Fatal("a cookie signed with a removed key was accepted")
	}
}
