package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Known values of the sticky fields.
var (
	StickyModes    = []string{"route", "insert", "prefix"}
	CookieSecure   = []string{"auto", "always", "never"}
	CookieSameSite = []string{"lax", "strict", "none", "off"}
)

// MinCookieKeyLen is the shortest cookie key accepted (as the balancer's).
const MinCookieKeyLen = 32

// sticky checks a balancer's sticky section.
func (v *checker) sticky(f string, s *Sticky) {
	f += ".sticky"
	v.oneOf(f+".mode", s.Mode, StickyModes)
	for i, n := range s.Names {
		if !ValidCookieName(n) {
			v.add(fmt.Sprintf("%s.names[%d]", f, i), "%q is not a valid cookie name", n)
		}
	}
	if sep := s.Separator; sep != "" && (len(sep) != 1 || !isSeparator(sep[0])) {
		v.add(f+".separator", "%q must be one printable ASCII character other than a letter, digit, space, ';', ',', '=' or '\"'", sep)
	} else if s.Mode == "prefix" && sep != "" && strings.ContainsAny(sep, "-_.") {
		v.add(f+".separator", "%q may be part of a route: in prefix mode use a character routes do not hold, like the default \"~\"", sep)
	}
	switch {
	case s.Mode == "insert" && s.Cookie == nil:
		v.add(f+".mode", "insert needs sticky.cookie with key_file or key_env (the key that signs Tether's cookie)")
	case s.Mode != "insert" && s.Cookie != nil:
		v.add(f+".cookie", "sticky.cookie is used only with mode: insert")
	case s.Cookie != nil:
		v.stickyCookie(f+".cookie", s.Cookie)
	}
}

func (v *checker) stickyCookie(f string, c *StickyCookie) {
	if c.Name != "" && !ValidCookieName(c.Name) {
		v.add(f+".name", "%q is not a valid cookie name", c.Name)
	}
	if c.Path != "" && (!strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, "; \t\r\n")) {
		v.add(f+".path", "%q must start with / and hold no ';' or space", c.Path)
	}
	if c.Domain != "" && !validDomain(c.Domain) {
		v.add(f+".domain", "%q is not a domain name", c.Domain)
	}
	v.oneOf(f+".secure", c.Secure, CookieSecure)
	v.oneOf(f+".same_site", c.SameSite, CookieSameSite)
	if c.SameSite == "none" && c.Secure == "never" {
		v.add(f+".same_site", "none needs a Secure cookie: browsers drop it with secure: never")
	}
	v.nonNegative(f+".max_idle", c.MaxIdle)
	v.nonNegative(f+".max_life", c.MaxLife)
	switch {
	case c.KeyFile != "" && c.KeyEnv != "":
		v.add(f+".key_env", "give key_file or key_env, not both")
	case c.KeyFile == "" && c.KeyEnv == "":
		v.add(f, "key_file or key_env is required: the key that signs Tether's cookie")
	case c.KeyFile != "":
		if _, err := CookieKeys(c, nil); err != nil {
			v.add(f+".key_file", "%v", err)
		}
	case !isEnvName(c.KeyEnv):
		v.add(f+".key_env", "%q is not an environment variable name", c.KeyEnv)
	}
	// The variable's value is read where the other secrets given by
	// environment variables are (internal/app, for serve and check),
	// through the environment they are given.
}

// CookieKeys reads the keys of Tether's cookie from c's KeyFile or else
// the environment variable KeyEnv through getenv (os.Getenv if nil): one
// per line, surrounding white space trimmed, blank lines and lines
// starting with # ignored; at least one, each at least MinCookieKeyLen
// bytes. Errors never quote a key.
func CookieKeys(c *StickyCookie, getenv func(string) string) ([][]byte, error) {
	var data []byte
	switch {
	case c.KeyFile != "":
		b, err := readSecretFile(c.KeyFile)
		if err != nil {
			return nil, err
		}
		data = b
	case c.KeyEnv != "":
		if getenv == nil {
			getenv = os.Getenv
		}
		s := getenv(c.KeyEnv)
		if strings.TrimSpace(s) == "" {
			return nil, fmt.Errorf("environment variable %s is not set", c.KeyEnv)
		}
		data = []byte(s)
	default:
		return nil, errors.New("no key_file or key_env")
	}
	return parseKeys(data)
}

func parseKeys(data []byte) ([][]byte, error) {
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if len(line) < MinCookieKeyLen {
			return nil, fmt.Errorf("the key on line %d is %d characters: at least %d are required (try: openssl rand -base64 32)", n, len(line), MinCookieKeyLen)
		}
		keys = append(keys, bytes.Clone(line))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no key found: write one per line, at least 32 characters (try: openssl rand -base64 32)")
	}
	return keys, nil
}

// validDomain reports whether s looks like a cookie Domain: letters,
// digits, '-' and '.', an optional leading dot.
func validDomain(s string) bool {
	s = strings.TrimPrefix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlnum(c) || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
