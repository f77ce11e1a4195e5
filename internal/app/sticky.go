package app

import (
	"net/http"

	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/config"
)

// stickyOptions maps a balancer's sticky section onto o, reading the
// cookie keys of insert mode from their file or through getenv (again at
// each reload: that is how keys rotate). f is the balancer's field in the
// file ("balancers[0]"); an error is a config.FieldError.
func stickyOptions(o *balancer.Options, b *config.Balancer, f string, getenv func(string) string) error {
	s := &b.Sticky
	mode, err := balancer.ParseStickyMode(s.Mode)
	if err != nil {
		return config.FieldError{Field: f + ".sticky.mode", Msg: err.Error()}
	}
	o.Sticky = mode
	if s.Separator != "" {
		o.Separator = s.Separator[0]
	}
	c := s.Cookie
	if mode != balancer.StickyInsert || c == nil {
		return nil
	}
	keys, err := config.CookieKeys(c, getenv)
	if err != nil {
		field := f + ".sticky.cookie.key_file"
		if c.KeyFile == "" {
			field = f + ".sticky.cookie.key_env"
		}
		return config.FieldError{Field: field, Msg: err.Error()}
	}
	o.Cookie = balancer.InsertCookie{
		Name: c.Name, Keys: keys, Path: c.Path, Domain: c.Domain,
		Script: c.HTTPOnly != nil && !*c.HTTPOnly, MaxIdle: c.MaxIdle, MaxLife: c.MaxLife, NoCache: c.NoCache,
	}
	if o.Cookie.Path == "" {
		o.Cookie.Path = b.Path // the balancer's own path: balancers on one host keep their cookies apart
	}
	switch c.Secure {
	case "always":
		o.Cookie.Secure = balancer.SecureAlways
	case "never":
		o.Cookie.Secure = balancer.SecureNever
	}
	switch c.SameSite {
	case "strict":
		o.Cookie.SameSite = http.SameSiteStrictMode
	case "none":
		o.Cookie.SameSite = http.SameSiteNoneMode
	case "off":
		o.Cookie.SameSite = http.SameSiteDefaultMode
	}
	return nil
}
