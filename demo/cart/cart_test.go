package cart_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/memstore"
)

// node is a cart app over a memstore behind a real HTTP server.
type node struct {
	srv   *httptest.Server
	store *memstore.Store
}

func newNode(t *testing.T, o cart.Options) *node {
	t.Helper()
	st, err := memstore.New(memstore.Options{JanitorInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if o.Store == nil {
		o.Store = st
	}
	if o.Route == "" {
		o.Route = "n1"
	}
	app, err := cart.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return &node{srv: srv, store: st}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so that tests see every response.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// call sends a request and decodes a JSON cart.
func call(t *testing.T, c *http.Client, method, url, contentType, body string) (*http.Response, cart.Cart) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got cart.Cart
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
	return resp, got
}

func TestAPIContract(t *testing.T) {
	n := newNode(t, cart.Options{})
	c := browser(t)
	api := n.srv.URL + "/api"

	resp, got := call(t, c, "GET", api+"/cart", "", "")
	if got.Node != "n1" || got.Session != "" || got.Items == nil || len(got.Items) != 0 || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("first GET: %+v, Set-Cookie %q; want node n1, no session, items []", got, resp.Header.Values("Set-Cookie"))
	}
	if n.store.Stats().Sessions != 0 {
		t.Fatal("GET /api/cart created a session")
	}

	resp, got = call(t, c, "POST", api+"/cart/items", "application/x-www-form-urlencoded", "item=apple")
	sc := resp.Header.Values("Set-Cookie")
	if len(sc) != 1 || !strings.HasPrefix(sc[0], "JSESSIONID="+got.Session+"; ") || !strings.HasSuffix(sc[0], "; Path=/; HttpOnly; SameSite=Lax") {
		t.Fatalf("Set-Cookie %q for session %q; want JSESSIONID=<id>.n1; Path=/; HttpOnly; SameSite=Lax", sc, got.Session)
	}
	if !strings.HasSuffix(got.Session, ".n1") || strings.Join(got.Items, ",") != "apple" {
		t.Fatalf("after adding apple: %+v", got)
	}
	sid := got.Session

	_, got = call(t, c, "POST", api+"/cart/items", "application/json", `{"item": "pear"}`)
	if got.Session != sid || strings.Join(got.Items, ",") != "apple,pear" {
		t.Fatalf("after adding pear by JSON: %+v", got)
	}
	if _, got = call(t, c, "GET", api+"/cart", "", ""); got.Session != sid || len(got.Items) != 2 {
		t.Fatalf("GET after adding: %+v", got)
	}

	resp, got = call(t, c, "POST", api+"/logout", "", "")
	sc = resp.Header.Values("Set-Cookie")
	if len(sc) != 1 || !strings.Contains(sc[0], "Max-Age=0") || !strings.Contains(sc[0], "Path=/") {
		t.Fatalf("logout Set-Cookie %q; want the cookie expired with Path=/", sc)
	}
	if got.Session != "" || len(got.Items) != 0 || n.store.Stats().Sessions != 0 {
		t.Fatalf("logout: %+v, %d sessions stored", got, n.store.Stats().Sessions)
	}
	// The browser dropped the cookie: the next request carries none.
	u, _ := url.Parse(n.srv.URL)
	if cs := c.Jar.Cookies(u); len(cs) != 0 {
		t.Fatalf("the browser still has %v", cs)
	}
	if _, got = call(t, c, "GET", api+"/cart", "", ""); got.Session != "" || len(got.Items) != 0 {
		t.Fatalf("GET after logout: %+v", got)
	}
}

func TestAddItemErrors(t *testing.T) {
	n := newNode(t, cart.Options{})
	form, js := "application/x-www-form-urlencoded", "application/json"
	tests := []struct {
		name, contentType, body string
		want                    int
	}{
		{"empty item", form, "item=+", 400},
		{"missing field", form, "thing=apple", 400},
		{"missing JSON key", js, `{"thing": "apple"}`, 400},
		{"too long", form, "item=" + strings.Repeat("a", cart.MaxItemLen+1), 400},
		{"control character", js, `{"item": "a\u0000b"}`, 400},
		{"invalid UTF-8", form, "item=%ff", 400},
		{"bad JSON", js, `{"item": `, 400},
		{"wrong content type", "text/plain", "apple", 415},
		{"body too large", form, "item=" + strings.Repeat("a", 10<<10), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := call(t, browser(t), "POST", n.srv.URL+"/api/cart/items", tt.contentType, tt.body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if len(resp.Header.Values("Set-Cookie")) != 0 {
				t.Fatal("a refused item created a session")
			}
		})
	}
	if n.store.Stats().Sessions != 0 {
		t.Fatal("refused items created sessions")
	}
}

func TestCartFull(t *testing.T) {
	n := newNode(t, cart.Options{})
	c := browser(t)
	for i := 0; i < cart.MaxItems; i++ {
		if resp, _ := call(t, c, "POST", n.srv.URL+"/api/cart/items", "application/json", `{"item":"x"}`); resp.StatusCode != 200 {
			t.Fatalf("item %d: %d", i, resp.StatusCode)
		}
	}
	if resp, _ := call(t, c, "POST", n.srv.URL+"/api/cart/items", "application/json", `{"item":"x"}`); resp.StatusCode != 422 {
		t.Fatalf("item beyond MaxItems: %d, want 422", resp.StatusCode)
	}
	if _, got := call(t, c, "GET", n.srv.URL+"/api/cart", "", ""); len(got.Items) != cart.MaxItems {
		t.Fatalf("%d items kept", len(got.Items))
	}
}

// notReady is a store still receiving its peers' sessions.
type notReady struct{ session.Store }

func (notReady) Ready() error { return errors.New("receiving session state from n2") }

func TestHealthz(t *testing.T) {
	tests := []struct {
		name string
		o    cart.Options
		want int
	}{
		{"ready", cart.Options{}, 200},
		{"app not ready", cart.Options{Ready: func() error { return errors.New("warming up") }}, 503},
		{"store not ready", cart.Options{Store: notReady{}}, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, tt.o)
			resp, err := http.Get(n.srv.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !strings.Contains(string(b), `"node": "n1"`) {
				t.Fatalf("%d %s, want %d", resp.StatusCode, b, tt.want)
			}
		})
	}
}

func TestHTMLPage(t *testing.T) {
	n := newNode(t, cart.Options{Route: "node-7"})
	c := browser(t)
	page := func() string {
		t.Helper()
		resp, err := c.Get(n.srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if len(resp.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("GET / set %q", resp.Header.Values("Set-Cookie"))
		}
		return string(b)
	}
	if p := page(); !strings.Contains(p, "served by node-7") || !strings.Contains(p, "No session yet") {
		t.Fatalf("page without a session:\n%s", p)
	}
	post := func(path, body string) *http.Response {
		t.Helper()
		resp, err := c.Post(n.srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
			t.Fatalf("POST %s: %d to %q, want 303 to /", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		return resp
	}
	post("/add", "item="+url.QueryEscape("<script>alert(1)</script>"))
	p := page()
	if !strings.Contains(p, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(p, "<script>alert") {
		t.Fatalf("the item is not escaped:\n%s", p)
	}
	if !strings.Contains(p, `<span class="route">.node-7</span>`) {
		t.Fatalf("the route suffix is not set apart:\n%s", p)
	}
	resp := post("/logout", "")
	if sc := resp.Header.Values("Set-Cookie"); len(sc) != 1 || !strings.Contains(sc[0], "Max-Age=0") {
		t.Fatalf("logout Set-Cookie %q", sc)
	}
	if p := page(); !strings.Contains(p, "No session yet") {
		t.Fatalf("page after logout:\n%s", p)
	}
}

func TestAddItemMultipart(t *testing.T) {
	n := newNode(t, cart.Options{})
	body := "--B\r\nContent-Disposition: form-data; name=\"item\"\r\n\r\nplum\r\n--B--\r\n"
	resp, got := call(t, browser(t), "POST", n.srv.URL+"/api/cart/items", "multipart/form-data; boundary=B", body)
	if resp.StatusCode != 200 || strings.Join(got.Items, ",") != "plum" {
		t.Fatalf("%d %+v", resp.StatusCode, got)
	}
}

// TestTwoTabs: two tabs of one browser post the page's add form at once,
// over and over, as a user double-clicking in both would. Every add is
// answered with the redirect back to the page, and the page lists every
// item: the app has no lock of its own, the session library serializes
// the requests of one session.
func TestTwoTabs(t *testing.T) {
	const perTab = 49 // the cart holds 100
	n := newNode(t, cart.Options{})
	b := browser(t) // one cookie jar, as the tabs of one browser share it
	if resp, _ := call(t, b, "POST", n.srv.URL+"/api/cart/items", "application/x-www-form-urlencoded", "item=first"); resp.StatusCode != 200 {
		t.Fatalf("first add: %d", resp.StatusCode)
	}
	var wg sync.WaitGroup
	for tab := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perTab {
				form := url.Values{"item": {fmt.Sprintf("tab%d-%d", tab, i)}}.Encode()
				resp, err := b.Post(n.srv.URL+"/add", "application/x-www-form-urlencoded", strings.NewReader(form))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusSeeOther {
					t.Errorf("tab %d add %d: %d", tab, i, resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	resp, err := b.Get(n.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for tab := range 2 {
		for i := range perTab {
			if item := fmt.Sprintf("tab%d-%d", tab, i); !strings.Contains(string(page), ">"+item+"<") {
				t.Errorf("the page lacks %s", item)
			}
		}
	}
}
