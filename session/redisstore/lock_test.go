package redisstore_test

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

	"github.com/redis/go-redis/v9"

	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/redisstore"
)

// noLocker is the Store without its Locker, to show what the lock is for.
type noLocker struct {
	session.Store
	session.Claimer
}

// TestParallelAddsTwoNodes sends 90 parallel adds to one cart, alternately
// to two cart apps sharing one Redis: with the store's lock every add is
// kept; without it, the read checks refuse the adds that would have
// overwritten another (409), and every add answered 200 is kept all the
// same.
func TestParallelAddsTwoNodes(t *testing.T) {
	r := dbproc.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	for _, tc := range []struct {
		name   string
		locker bool
	}{{"locker", true}, {"read checks only", false}} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := redisstore.New(c, redisstore.Options{Prefix: "adds:" + tc.name + ":"})
			if err != nil {
				t.Fatal(err)
			}
			var store session.Store = st
			if !tc.locker {
				store = noLocker{st, st}
			}
			var nodes []string
			for _, rt := range []string{"n1", "n2"} {
				app, err := cart.New(cart.Options{Route: rt, Store: store})
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
			const n = 90
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
			_, body, _ = get(t, nodes[1], cookie)
			var got cart.Cart
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("cart %q: %v", body, err)
			}
			have := map[string]bool{}
			for _, it := range got.Items {
				have[it] = true
			}
			ok, refused := 0, 0
			for i, s := range statuses {
				switch {
				case s == http.StatusOK:
					ok++
					if !have[fmt.Sprintf("item-%d", i)] {
						t.Errorf("item-%d was acknowledged and is not in the cart", i)
					}
				case s == http.StatusConflict && !tc.locker:
					refused++
				default:
					t.Errorf("add %d: status %d", i, s)
				}
			}
			if len(got.Items) != ok+1 {
				t.Errorf("cart holds %d items, %d acknowledged (and the first)", len(got.Items), ok)
			}
			if tc.locker && ok != n {
				t.Errorf("%d of %d adds kept with the lock", ok, n)
			}
			t.Logf("%d added, %d refused with 409", ok, refused)
		})
	}
}

func add(t *testing.T, base, cookie, item string) (int, string, string) {
	req, _ := http.NewRequest(http.MethodPost, base+"/api/cart/items", strings.NewReader(url.Values{"item": {item}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req, cookie)
}

func get(t *testing.T, base, cookie string) (int, string, string) {
	req, _ := http.NewRequest(http.MethodGet, base+"/api/cart", nil)
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
