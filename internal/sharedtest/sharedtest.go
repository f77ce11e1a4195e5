// Package sharedtest checks what a session store shared by several nodes
// promises: parallel read-modify-writes of one session, spread over nodes,
// are applied one after another or refused, never lost. It drives two
// real cart apps (demo/cart) over one store.
package sharedtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/session"
)

// WithoutLocker returns st without its session.Locker (keeping its
// Claimer), to show what the store's lock is for.
func WithoutLocker(st interface {
	session.Store
	session.Claimer
}) session.Store {
	return noLocker{st, st}
}

type noLocker struct {
	session.Store
	session.Claimer
}

// ParallelAdds sends n parallel adds to one cart, alternately to two cart
// apps (routes n1, n2) over st, and checks that every add answered 200 is
// in the cart once and that every other add was refused with 409. It
// returns how many were answered 200.
func ParallelAdds(t *testing.T, st session.Store, n int) int {
	t.Helper()
	var nodes []string
	for _, rt := range []string{"n1", "n2"} {
		app, err := cart.New(cart.Options{Route: rt, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(app)
		t.Cleanup(srv.Close)
		nodes = append(nodes, srv.URL)
	}
	status, body, cookie := add(t, nodes[0], "", "first")
	if status != http.StatusOK {
		t.Fatalf("first add: %d %s", status, body)
	}
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, _ = add(t, nodes[i%2], cookie, fmt.Sprintf("item-%d", i))
		}()
	}
	wg.Wait()
	req, _ := http.NewRequest(http.MethodGet, nodes[1]+"/api/cart", nil)
	_, body, _ = do(t, req, cookie)
	var got cart.Cart
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("cart %q: %v", body, err)
	}
	count := map[string]int{}
	for _, it := range got.Items {
		count[it]++
	}
	ok, refused := 0, 0
	for i, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
			if c := count[fmt.Sprintf("item-%d", i)]; c != 1 {
				t.Errorf("item-%d was acknowledged and is in the cart %d times", i, c)
			}
		case http.StatusConflict:
			refused++
		default:
			t.Errorf("add %d: status %d", i, s)
		}
	}
	if len(got.Items) != ok+1 {
		t.Errorf("the cart holds %d items, %d adds were acknowledged (and the first)", len(got.Items), ok)
	}
	t.Logf("%d parallel adds over two nodes: %d answered 200, %d refused with 409", n, ok, refused)
	return ok
}

func add(t *testing.T, base, cookie, item string) (int, string, string) {
	req, _ := http.NewRequest(http.MethodPost, base+"/api/cart/items", strings.NewReader(url.Values{"item": {item}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req, cookie)
}

// do sends req with the session cookie and returns the status, the body
// and the session cookie after it.
func do(t *testing.T, req *http.Request, cookie string) (int, string, string) {
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: cookie})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, "", cookie
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == "JSESSIONID" {
			cookie = c.Value
		}
	}
	return resp.StatusCode, string(b), cookie
}
