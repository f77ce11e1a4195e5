package app

import (
	"fmt"
	"net/http"

	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/config"
)

// stickyOptions maps a balancer's sticky section onto o, reading the
// cookie keys of insert mode (again at each reload: that is how keys
// rotate).
func stickyOptions(o *balancer.Options, b *config.Balancer) error {
	s := &b.Sticky
	mode, err := balancer.ParseStickyMode(s.Mode)
	if err != nil {
		return err
	}
	o.Sticky = mode
	if s.Separator != "" {
		o.Separator = s.Separator[0]
	}
	c := s.Cookie
	if mode != balancer.StickyInsert || c == nil {
		return nil
	}
	keys, err := config.CookieKeys(c)
	if err != nil {
		return fmt.Errorf("balancer %s: sticky.cookie: %w", b.Name, err)
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
