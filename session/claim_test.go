package session_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tetherlb/tether/session"
)

// claimingStore stands for a replicated store: every node sees every
// session, and Claim moves ownership. It wraps a memstore shared by the
// nodes' Managers, keeping owners aside.
type claimingStore struct {
	session.Store
	mu     sync.Mutex
	owner  map[string]string
	claims []string // "<id> <route>"
}

func (c *claimingStore) Load(ctx context.Context, id string) (session.Record, error) {
	rec, err := c.Store.Load(ctx, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.owner[id]; ok {
		rec.Route = r
	}
	return rec, err
}

func (c *claimingStore) Claim(ctx context.Context, id, route string) (session.Record, error) {
	rec, err := c.Store.Load(ctx, id)
	if err != nil {
		return rec, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owner == nil {
		c.owner = map[string]string{}
	}
	c.owner[id] = route
	c.claims = append(c.claims, id+" "+route)
	rec.Route = route
	return rec, nil
}

// TestTakeover: a node receiving another node's session (its owner died)
// claims it and rewrites the cookie's route to its own, same id part, so
// that the balancer sends the next requests to it.
func TestTakeover(t *testing.T) {
	n1 := newEnv(t, session.Options{Route: "n1"})
	cs := &claimingStore{Store: n1.store}
	n1 = newEnv(t, session.Options{Route: "n1", Store: cs, Now: n1.clock.Now})
	n2 := newEnv(t, session.Options{Route: "n2", Store: cs, Now: n1.clock.Now})

	c1 := sessionCookie(t, n1.do(put(t, "cart", "apple"), "POST", "/"))
	id := idPart(c1)

	// n1 is gone; the balancer sends <id>.n1 to n2.
	resp := n2.do(get(t, "cart"), "GET", "/", c1)
	if got := body(t, resp); got != "apple" {
		t.Fatalf("n2 read %q", got)
	}
	c2 := sessionCookie(t, resp)
	if c2 != "JSESSIONID="+id+".n2" {
		t.Fatalf("cookie after takeover %q, want JSESSIONID=%s.n2", c2, id)
	}
	// Served by n2 from now on: no more claims, no more cookies.
	if resp := n2.do(put(t, "cart", "pear"), "POST", "/", c2); len(setCookies(resp)) != 0 {
		t.Fatalf("Set-Cookie %q on an owned session", setCookies(resp))
	}
	// A stale tab still sends <id>.n1, and n1 is back: it claims the
	// session back (the node serving a request owns its session).
	resp = n1.do(get(t, "cart"), "GET", "/", c1)
	if got := body(t, resp); got != "pear" {
		t.Fatalf("n1 read %q after n2 wrote", got)
	}
	if sc := setCookies(resp); len(sc) != 0 {
		t.Fatalf("Set-Cookie %q: the presented cookie already names n1", sc)
	}
	want := fmt.Sprint([]string{id + " n2", id + " n1"})
	if got := fmt.Sprint(cs.claims); got != want {
		t.Fatalf("claims %s, want %s", got, want)
	}
	if n2.obs.claimed != 1 || n1.obs.claimed != 1 {
		t.Fatalf("claims observed: n1 %d, n2 %d", n1.obs.claimed, n2.obs.claimed)
	}
}

// TestNoTakeoverWithoutClaimer: with a store that cannot claim, another
// node's session is unknown here, whatever the cookie says.
func TestNoTakeoverWithoutClaimer(t *testing.T) {
	n1 := newEnv(t, session.Options{Route: "n1"})
	n2 := newEnv(t, session.Options{Route: "n2", Store: n1.store, Now: n1.clock.Now})
	c1 := sessionCookie(t, n1.do(put(t, "cart", "apple"), "POST", "/"))
	tests := []struct {
		name, cookie string
	}{
		{"cookie names the other node", c1},
		{"cookie names this node, store says the other", strings.TrimSuffix(c1, ".n1") + ".n2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := n2.do(get(t, "cart"), "GET", "/", tt.cookie)
			if got := body(t, resp); got != "" {
				t.Fatalf("n2 read %q from n1's session", got)
			}
			checkCookie(t, resp, "expire", tt.cookie, "Path=/")
		})
	}
	if n2.obs.rejected[session.RejectForeign] != 2 {
		t.Fatalf("rejections %v", n2.obs.rejected)
	}
	if got := body(t, n1.do(get(t, "cart"), "GET", "/", c1)); got != "apple" {
		t.Fatalf("n1's session damaged: %q", got)
	}
}

// TestRouteSuffixCorrected checks that a request to the owner with a
// stale route suffix gets its cookie corrected without a claim.
func TestRouteSuffixCorrected(t *testing.T) {
	n1 := newEnv(t, session.Options{Route: "n1"})
	cs := &claimingStore{Store: n1.store}
	n1 = newEnv(t, session.Options{Route: "n1", Store: cs, Now: n1.clock.Now})
	c := sessionCookie(t, n1.do(put(t, "k", "v"), "POST", "/"))
	stale := strings.TrimSuffix(c, ".n1") + ".n9"
	resp := n1.do(http.HandlerFunc(get(t, "k")), "GET", "/", stale)
	if got := sessionCookie(t, resp); got != c {
		t.Fatalf("cookie %q, want %q", got, c)
	}
	if len(cs.claims) != 0 {
		t.Fatalf("claims %v for a session this node owns", cs.claims)
	}
}
