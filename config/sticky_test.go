package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodKey = "0123456789abcdef0123456789abcdef-key-one"

func TestStickyErrors(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "cookie.key")
	short := filepath.Join(dir, "short.key")
	os.WriteFile(keys, []byte("# rotated 2026-12-01\n"+goodKey+"\n\n"), 0o600)
	os.WriteFile(short, []byte("tooshort\n"), 0o600)
	const members = "    members: [{url: 'http://h:1', route: n1}]\n"
	tests := []struct {
		name, sticky string // the balancer's sticky section, from line 3
		want         []string
	}{
		{"insert with file", "    sticky: {mode: insert, cookie: {key_file: " + keys + "}}\n", nil},
		{"insert with env", "    sticky:\n      mode: insert\n      cookie: {name: LB, key_env: TETHER_TEST_COOKIE_KEY, secure: always, same_site: none, max_idle: 30m, max_life: 8h, http_only: false, domain: .example.com, path: /shop}\n", nil},
		{"prefix", "    sticky: {mode: prefix, names: [PHPSESSID]}\n", nil},
		{"unknown mode", "    sticky: {mode: cookie}\n", []string{`3: balancers[0].sticky.mode: unknown value "cookie": use one of route, insert, prefix`}},
		{"insert without cookie", "    sticky: {mode: insert}\n", []string{`3: balancers[0].sticky.mode: insert needs sticky.cookie`}},
		{"cookie without insert", "    sticky:\n      mode: prefix\n      cookie: {name: X}\n", []string{`5: balancers[0].sticky.cookie: sticky.cookie is used only with mode: insert`}},
		{"no key", "    sticky:\n      mode: insert\n      cookie: {name: X}\n", []string{`5: balancers[0].sticky.cookie: key_file or key_env is required`}},
		{"both keys", "    sticky:\n      mode: insert\n      cookie: {key_file: " + keys + ", key_env: X}\n", []string{`5: balancers[0].sticky.cookie.key_env: give key_file or key_env, not both`}},
		{"missing key file", "    sticky:\n      mode: insert\n      cookie:\n        key_file: /nonexistent/cookie.key\n", []string{`6: balancers[0].sticky.cookie.key_file: open /nonexistent/cookie.key`}},
		{"short key", "    sticky:\n      mode: insert\n      cookie:\n        key_file: " + short + "\n", []string{`6: balancers[0].sticky.cookie.key_file: the key on line 1 is 8 characters: at least 32`}},
		{"unset env: read by check and serve, not Validate", "    sticky:\n      mode: insert\n      cookie:\n        key_env: TETHER_TEST_UNSET_KEY\n", nil},
		{"bad env name", "    sticky:\n      mode: insert\n      cookie:\n        key_env: 'KEY-1'\n", []string{`6: balancers[0].sticky.cookie.key_env: "KEY-1" is not an environment variable name`}},
		{"bad attributes", "    sticky:\n      mode: insert\n      cookie:\n        key_file: " + keys + "\n        name: 'a b'\n        path: shop\n        domain: 'a;b'\n        secure: sometimes\n        same_site: loose\n        max_idle: -1s\n",
			[]string{`7: balancers[0].sticky.cookie.name: "a b" is not a valid cookie name`, `8: balancers[0].sticky.cookie.path: "shop" must start with /`,
				`9: balancers[0].sticky.cookie.domain: "a;b" is not a domain name`, `10: balancers[0].sticky.cookie.secure: unknown value "sometimes"`,
				`11: balancers[0].sticky.cookie.same_site: unknown value "loose"`, `12: balancers[0].sticky.cookie.max_idle: -1s must not be negative`}},
		{"same_site none, never secure", "    sticky:\n      mode: insert\n      cookie: {key_file: " + keys + ", same_site: none, secure: never}\n",
			[]string{`5: balancers[0].sticky.cookie.same_site: none needs a Secure cookie`}},
		{"prefix separator in routes", "    sticky: {mode: prefix, separator: '.'}\n", []string{`3: balancers[0].sticky.separator: "." may be part of a route`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wantErrors(t, "balancers:\n  - name: b\n"+tt.sticky+members, tt.want)
			if err != nil && strings.Contains(err.Error(), goodKey) {
				t.Fatal("an error quotes a key")
			}
		})
	}
}

// wantErrors parses yaml as f.yaml and checks its errors against want,
// each "LINE: substring of the message"; none wanted, it must parse. It
// returns the error.
func wantErrors(t *testing.T, yaml string, want []string) error {
	t.Helper()
	_, err := Parse("f.yaml", []byte(yaml))
	if len(want) == 0 {
		if err != nil {
			t.Fatal(err)
		}
		return nil
	}
	var es Errors
	if !errors.As(err, &es) || len(es) != len(want) {
		t.Fatalf("got %v, want %d errors", err, len(want))
	}
	for i, w := range want {
		line, msg, _ := strings.Cut(w, ": ")
		if got := es[i].Error(); !strings.HasPrefix(got, "f.yaml:"+line+": ") || !strings.Contains(got, msg) {
			t.Errorf("error %d = %q, want f.yaml:%s", i, got, w)
		}
	}
	return err
}

// TestCookieKeysFromEnvironment: key_env is read through the getenv
// given, never os.Getenv, and a variable not set is an error that names
// it.
func TestCookieKeysFromEnvironment(t *testing.T) {
	t.Setenv("TETHER_TEST_COOKIE_KEY", "from os.Getenv, not to be read")
	env := map[string]string{"TETHER_TEST_COOKIE_KEY": goodKey, "BLANK": "  \n"}
	getenv := func(k string) string { return env[k] }
	keys, err := CookieKeys(&StickyCookie{KeyEnv: "TETHER_TEST_COOKIE_KEY"}, getenv)
	if err != nil || len(keys) != 1 || string(keys[0]) != goodKey {
		t.Fatalf("keys %q, %v", keys, err)
	}
	for _, name := range []string{"UNSET", "BLANK"} {
		if _, err := CookieKeys(&StickyCookie{KeyEnv: name}, getenv); err == nil || err.Error() != "environment variable "+name+" is not set" {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCookieKeys(t *testing.T) {
	second := strings.Repeat("k", 32)
	keys, err := parseKeys([]byte("  " + goodKey + "  \r\n# old key kept for verification\n" + second + "\n"))
	if err != nil || len(keys) != 2 || string(keys[0]) != goodKey || string(keys[1]) != second {
		t.Fatalf("keys %q, %v", keys, err)
	}
	for _, bad := range []string{"", "# only a comment\n\n", goodKey + "\nshort\n"} {
		if _, err := parseKeys([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "short") && !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v does not say which line", bad, err)
		}
	}
}

// FuzzParseKeys: no key file makes parseKeys fail other than with an
// error, every key it returns is long enough, and errors quote no key.
func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("# c\n" + goodKey + "\n"))
	f.Add([]byte("short\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseKeys(data)
		if err != nil {
			if len(data) >= MinCookieKeyLen && strings.Contains(err.Error(), string(data)) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		for _, k := range keys {
			if len(k) < MinCookieKeyLen || k[0] == '#' {
				t.Fatalf("key %q accepted", k)
			}
		}
	})
}
