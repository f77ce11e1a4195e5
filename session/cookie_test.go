package session_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/tetherlb/tether/session"
)

func TestCookieAttributes(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name       string
		opts       session.CookieOptions
		tls        bool
		remote     string
		forwarded  string
		wantSecure bool
		wantAttrs  []string
		notAttrs   []string
	}{
		{name: "plain HTTP", remote: "192.0.2.1:5000", wantAttrs: []string{"HttpOnly", "SameSite=Lax", "Path=/"}},
		{name: "TLS", tls: true, remote: "192.0.2.1:5000", wantSecure: true},
		{name: "trusted proxy says https", remote: "10.1.2.3:5000", forwarded: "https", wantSecure: true},
		{name: "trusted IPv6 proxy says HTTPS", remote: "[::1]:5000", forwarded: "HTTPS", wantSecure: true},
		{name: "trusted proxy chain, client used https", remote: "10.1.2.3:5000", forwarded: "https, http", wantSecure: true},
		{name: "trusted proxy says http", remote: "10.1.2.3:5000", forwarded: "http"},
		{name: "untrusted client claims https", remote: "192.0.2.1:5000", forwarded: "https"},
		{name: "SecureAlways", opts: session.CookieOptions{Secure: session.SecureAlways}, remote: "192.0.2.1:5000", wantSecure: true},
		{name: "SecureNever over TLS", opts: session.CookieOptions{Secure: session.SecureNever}, tls: true, remote: "192.0.2.1:5000"},
		{name: "scripts allowed", opts: session.CookieOptions{NoHTTPOnly: true}, remote: "192.0.2.1:5000", notAttrs: []string{"HttpOnly"}},
		{name: "strict", opts: session.CookieOptions{SameSite: http.SameSiteStrictMode}, remote: "192.0.2.1:5000", wantAttrs: []string{"SameSite=Strict"}},
		{name: "name path domain", opts: session.CookieOptions{Name: "PHPSESSID", Path: "/shop", Domain: "example.com"},
			remote: "192.0.2.1:5000", wantAttrs: []string{"PHPSESSID=", "Path=/shop", "Domain=example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, session.Options{Cookie: tt.opts, TrustedProxies: proxies})
			r := httptest.NewRequest("POST", "/shop/", nil)
			r.RemoteAddr = tt.remote
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tt.forwarded != "" {
				r.Header.Set("X-Forwarded-Proto", tt.forwarded)
			}
			w := httptest.NewRecorder()
			e.m.Handler(put(t, "k", "v")).ServeHTTP(w, r)
			sc := w.Result().Header.Values("Set-Cookie")
			if len(sc) != 1 {
				t.Fatalf("Set-Cookie %q", sc)
			}
			attrs := strings.Split(sc[0], "; ")
			if got := contains(attrs, "Secure"); got != tt.wantSecure {
				t.Fatalf("Set-Cookie %q: Secure %v, want %v", sc[0], got, tt.wantSecure)
			}
			for _, a := range tt.wantAttrs {
				if !strings.Contains(sc[0], a) {
					t.Errorf("Set-Cookie %q lacks %q", sc[0], a)
				}
			}
			for _, a := range tt.notAttrs {
				if contains(attrs, a) {
					t.Errorf("Set-Cookie %q has %q", sc[0], a)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestOptionsValidate(t *testing.T) {
	store := &failingStore{}
	ok := session.Options{Store: store, Route: "n1"}
	tests := []struct {
		name   string
		change func(*session.Options)
		want   string // part of the error; "" for valid
	}{
		{"minimal", func(o *session.Options) {}, ""},
		{"no store", func(o *session.Options) { o.Store = nil }, "Store is required"},
		{"no route", func(o *session.Options) { o.Route = "" }, "Route"},
		{"route with a space", func(o *session.Options) { o.Route = "n 1" }, "Route"},
		{"separator ';'", func(o *session.Options) { o.Separator = ';' }, "Separator"},
		{"separator '-' (hex ids)", func(o *session.Options) { o.Separator = '-' }, ""},
		{"cookie name with '='", func(o *session.Options) { o.Cookie.Name = "a=b" }, "Cookie.Name"},
		{"relative cookie path", func(o *session.Options) { o.Cookie.Path = "app" }, "Cookie.Path"},
		{"cookie path with ';'", func(o *session.Options) { o.Cookie.Path = "/a;b" }, "Cookie.Path"},
		{"cookie domain with ';'", func(o *session.Options) { o.Cookie.Domain = "a;b" }, "Cookie.Domain"},
		{"SameSite None without Secure", func(o *session.Options) {
			o.Cookie.SameSite, o.Cookie.Secure = http.SameSiteNoneMode, session.SecureNever
		}, "SameSite None"},
		{"SameSite None, Secure auto", func(o *session.Options) { o.Cookie.SameSite = http.SameSiteNoneMode }, ""},
		{"96-bit ids", func(o *session.Options) { o.IDBytes = 12 }, "IDBytes"},
		{"touch as long as idle", func(o *session.Options) {
			o.IdleTimeout, o.TouchInterval = 1e9, 1e9
		}, "TouchInterval"},
		{"no idle timeout, any touch", func(o *session.Options) { o.IdleTimeout, o.TouchInterval = -1, 1e12 }, ""},
		{"value cap above session cap", func(o *session.Options) { o.MaxValueBytes, o.MaxSessionBytes = 10, 5 }, "MaxValueBytes"},
		{"bad path param", func(o *session.Options) { o.PathParam = "a b" }, "PathParam"},
		{"invalid proxy prefix", func(o *session.Options) { o.TrustedProxies = []netip.Prefix{{}} }, "TrustedProxies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.change(&o)
			err := o.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := session.New(o); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want an error about %s", err, tt.want)
			}
			if _, err := session.New(o); err == nil {
				t.Fatal("New accepted what Validate refused")
			}
		})
	}
}

func TestValidateReportsEveryMistake(t *testing.T) {
	err := session.Options{Route: "bad route", IDBytes: 8}.Validate()
	for _, want := range []string{"Store", "Route", "IDBytes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to mention %s", err, want)
		}
	}
}
