package app

import (
	"slices"
	"testing"

	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/route"
)

// config imports nothing from tether, so it holds copies of a few rules
// of the libraries. internal/app, which imports both, checks here that
// each copy agrees with its source.
func TestConfigRulesAgreeWithTheLibraries(t *testing.T) {
	if config.MaxWeight != balancer.MaxWeight {
		t.Errorf("config.MaxWeight %d, balancer.MaxWeight %d", config.MaxWeight, balancer.MaxWeight)
	}
	var methods []string
	for _, m := range balancer.Methods() {
		methods = append(methods, string(m))
	}
	if !slices.Equal(methods, config.Methods) {
		t.Errorf("config.Methods %v, balancer.Methods %v", config.Methods, methods)
	}
	var states []string
	for s := balancer.Active; ; s++ {
		if _, err := balancer.ParseState(s.String()); err != nil {
			break
		}
		states = append(states, s.String())
	}
	if !slices.Equal(states, config.States) {
		t.Errorf("config.States %v, balancer's states %v", config.States, states)
	}
	// Every string of one or two bytes, and a few longer ones.
	names := []string{"JSESSIONID", "__Host-id", "a b c", route.Join("x", "n1", '.'), string(make([]byte, route.MaxLen+1))}
	for i := range 256 {
		names = append(names, string([]byte{byte(i)}))
		for j := range 256 {
			names = append(names, string([]byte{byte(i), byte(j)}))
		}
	}
	for _, s := range names {
		if config.ValidCookieName(s) != route.ValidName(s) {
			t.Errorf("%q: config.ValidCookieName %v, route.ValidName %v", s, config.ValidCookieName(s), route.ValidName(s))
		}
		err := config.ValidateMember(&config.Member{URL: "http://127.0.0.1:1", Route: s})
		if (err == nil) != route.Valid(s) {
			t.Errorf("route %q: config says %v, route.Valid %v", s, err, route.Valid(s))
		}
	}
}
