package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/internal/browsertest"
	"github.com/tetherlb/tether/internal/proctest"
)

// The web UI in real headless Chromium: sign in with the token, see the
// members, drain one with a click (checked through the API), the live
// feed coming back after its connection is cut, data with markup shown
// as text, and the read-only token's buttons disabled.
//
// A screenshot is written to $TETHER_SCREENSHOT_DIR (else a temporary
// directory) and its path logged; TETHER_UPDATE_SCREENSHOTS=1 also
// writes docs/img/manager.png after half a minute of traffic.
func TestUIInChromium(t *testing.T) {
	b := browsertest.Start(t, browsertest.Options{Width: 1440, Height: 1200})
	docs := os.Getenv("TETHER_UPDATE_SCREENSHOTS") == "1"
	interval := 100 * time.Millisecond
	if docs {
		interval = time.Second
	}
	e := newEnv(t, envConfig{
		balancers: map[string][]string{"shop": {"n1", "n2", "n3"}},
		tune:      func(o *balancer.Options) { o.SessionIdle = 10 * time.Minute },
		opts:      func(o *Options) { o.FeedInterval = interval },
	})
	traffic := startTraffic(t, e, "shop", 12)

	t.Run("sign in and see the members", func(t *testing.T) {
		must(t, b.Navigate(e.srv.URL+"/"))
		signIn(t, b, rwToken)
		for _, rt := range []string{"n1", "n2", "n3"} {
			b.WaitText(t, `tr[data-route="`+rt+`"] .m-state`, "active")
			b.WaitText(t, `tr[data-route="`+rt+`"] .m-url`, e.backend[rt])
		}
		rows, err := b.FindAll("#balancers tr[data-route]")
		if err != nil || len(rows) != 3 {
			t.Fatalf("%d member rows, %v", len(rows), err)
		}
		b.WaitText(t, `section[data-balancer="shop"] .b-up`, "3/3")
	})

	t.Run("a drain clicked in the UI drains the member", func(t *testing.T) {
		b.ClickWhenReady(t, `tr[data-route="n2"] button[data-act="drain"]`)
		proctest.Eventually(t, 20*time.Second, func() error {
			if s := e.member("shop", "n2").State(); s != balancer.Draining {
				return fmt.Errorf("n2 is %v", s)
			}
			return nil
		})
		entries := e.audit()
		if len(entries) != 1 || entries[0].Actor != "read-write token" || entries[0].After.State != "draining" ||
			!strings.HasPrefix(entries[0].Remote, "127.0.0.1:") {
			t.Errorf("audit %+v", entries)
		}
		b.WaitText(t, `tr[data-route="n2"] .m-state`, "draining")
		b.WaitText(t, `tr[data-route="n2"] .m-drain`, "sessions left")
		b.WaitText(t, `#audit tbody tr`, "active → draining")
		var cookie string
		must(t, b.Execute(&cookie, "return document.cookie"))
		if cookie != "" {
			t.Errorf("the page set a cookie: %q", cookie)
		}
	})

	t.Run("weight set in the UI", func(t *testing.T) {
		in, err := b.Find(`tr[data-route="n1"] .m-weight-input`)
		must(t, err)
		must(t, in.SendKeys("4"))
		b.ClickWhenReady(t, `tr[data-route="n1"] button[data-act="weight"]`)
		proctest.Eventually(t, 20*time.Second, func() error {
			if w := e.member("shop", "n1").Weight(); w != 4 {
				return fmt.Errorf("n1 weight %d", w)
			}
			return nil
		})
		b.WaitText(t, `tr[data-route="n1"] .m-weight`, "4")
	})

	t.Run("the live feed reconnects after its connection is cut", func(t *testing.T) {
		e.srv.CloseClientConnections() // the page's event stream among them
		// A change made by someone else: the page learns of it only over
		// a new event stream.
		if a := e.do(req{method: "PATCH", path: "/api/v1/balancers/shop/members/n3", token: rwToken,
			body: map[string]any{"weight": 7}}); a.status != http.StatusOK {
			t.Fatalf("PATCH: %d %s", a.status, a.body)
		}
		b.WaitText(t, `tr[data-route="n3"] .m-weight`, "7")
		b.WaitText(t, "#conn-text", "live")
	})

	t.Run("the browser enforces the policy", func(t *testing.T) {
		var res struct{ HTML, Script, Ran string }
		must(t, b.Execute(&res, `const r = {};
			try { document.body.insertAdjacentHTML('beforeend', '<b>x</b>'); r.HTML = 'allowed'; } catch (e) { r.HTML = e.name; }
			try { const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.append(s); r.Script = 'allowed'; } catch (e) { r.Script = e.name; }
			r.Ran = window.__inline === 1 ? 'yes' : 'no';
			return r;`))
		if res.HTML != "TypeError" || res.Script != "TypeError" || res.Ran != "no" {
			t.Errorf("HTML sink %s, inline script %s (ran: %s); want both refused", res.HTML, res.Script, res.Ran)
		}
		logs, err := b.Logs()
		must(t, err)
		n := 0
		for _, l := range logs {
			if l.Level == "SEVERE" && strings.Contains(l.Message, "requires 'Trusted") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d violations reported as SEVERE, want 2 (checkConsole relies on it): %+v", n, logs)
		}
	})

	t.Run("add and remove a member in the UI", func(t *testing.T) {
		n4 := appBackend(t, "n4").URL
		b.ClickWhenReady(t, `section[data-balancer="shop"] details.add summary`)
		for name, value := range map[string]string{"route": "n4", "url": n4} {
			in, err := b.Find(`section[data-balancer="shop"] .add-form input[name="` + name + `"]`)
			must(t, err)
			must(t, in.SendKeys(value))
		}
		b.ClickWhenReady(t, `section[data-balancer="shop"] .add-form button[type="submit"]`)
		b.WaitText(t, `tr[data-route="n4"] .m-state`, "active")
		if m := e.member("shop", "n4"); m == nil || m.URL().String() != n4 {
			t.Fatalf("n4 not added: %v", m)
		}
		// Remove asks to confirm, and again (force) since n4 takes traffic.
		b.ClickWhenReady(t, `tr[data-route="n4"] button[data-act="remove"]`)
		for range 2 {
			proctest.Eventually(t, 20*time.Second, b.AcceptAlert)
		}
		proctest.Eventually(t, 20*time.Second, func() error {
			if e.member("shop", "n4") != nil {
				return fmt.Errorf("n4 still in the pool")
			}
			return nil
		})
		b.WaitText(t, "#audit tbody", "removed "+n4)
	})

	if docs {
		traffic.vary(30 * time.Second)
	}
	saveScreenshot(t, b, docs)
	checkConsole(t, b)

	t.Run("read-only token: buttons disabled", func(t *testing.T) {
		b.ClickWhenReady(t, "#signout")
		waitVisible(t, b, "#login")
		signIn(t, b, roToken)
		b.WaitText(t, "#role", "read-only")
		b.WaitText(t, `tr[data-route="n1"] .m-state`, "active")
		proctest.Eventually(t, 20*time.Second, func() error {
			for _, act := range []string{"drain", "stop", "weight", "remove"} {
				el, err := b.Find(`tr[data-route="n1"] button[data-act="` + act + `"]`)
				if err != nil {
					return err
				}
				var disabled bool
				if err := el.Property("disabled", &disabled); err != nil || !disabled {
					return fmt.Errorf("%s button enabled for the read-only token", act)
				}
			}
			return nil
		})
	})

	t.Run("a wrong token is refused", func(t *testing.T) {
		b.ClickWhenReady(t, "#signout")
		waitVisible(t, b, "#login")
		signIn(t, b, "not-the-token")
		b.WaitText(t, "#login-error", "refused")
	})

	t.Run("markup in data is shown as text", func(t *testing.T) {
		testMarkupIsText(t, b)
	})
	checkConsole(t, b)
}

// testMarkupIsText serves a balancer whose name, member URL, audit reason
// and operator carry markup, and checks the page shows them literally and
// runs none of it.
func testMarkupIsText(t *testing.T, b *browsertest.Browser) {
	evil := `<img src=x onerror="window.__xss=1">`
	e := newEnv(t, envConfig{balancers: map[string][]string{evil: {"n1"}}})
	a := e.do(req{method: "PATCH", path: "/api/v1/balancers/" + url.PathEscape(evil) + "/members/n1", token: rwToken,
		body:   MemberChange{Weight: num(2), Reason: `<script>window.__xss=2</script>`},
		header: map[string]string{"X-Tether-Operator": `<svg onload="window.__xss=3">`}})
	if a.status != 200 {
		t.Fatalf("change with markup: %d %s", a.status, a.body)
	}
	must(t, b.Navigate(e.srv.URL+"/"))
	signIn(t, b, rwToken)
	b.WaitText(t, ".b-name", evil)
	b.WaitText(t, "#audit tbody", `<script>window.__xss=2</script>`)
	b.WaitText(t, "#audit tbody", `<svg onload="window.__xss=3">`)
	var res struct {
		XSS     any `json:"xss"`
		Imgs    int `json:"imgs"`
		Scripts int `json:"scripts"`
		SVGs    int `json:"svgs"`
	}
	must(t, b.Execute(&res, `return {xss: window.__xss, imgs: document.querySelectorAll('img:not([src="/ui/favicon.svg"])').length,
		scripts: document.scripts.length, svgs: document.querySelectorAll('svg').length}`))
	if res.XSS != nil || res.Imgs != 0 || res.Scripts != 1 || res.SVGs != 0 {
		t.Errorf("markup from the data became elements: %+v", res)
	}
}

func signIn(t *testing.T, b *browsertest.Browser, token string) {
	t.Helper()
	in, err := b.Find("#token")
	must(t, err)
	must(t, in.SendKeys(token))
	b.ClickWhenReady(t, "#login-button")
}

func waitVisible(t *testing.T, b *browsertest.Browser, css string) {
	t.Helper()
	proctest.Eventually(t, 20*time.Second, func() error {
		var hidden bool
		if err := b.Execute(&hidden, "return document.querySelector(arguments[0]).hidden", css); err != nil {
			return err
		}
		if hidden {
			return fmt.Errorf("%s hidden", css)
		}
		return nil
	})
}

// checkConsole fails on console errors: a script error, or a violation of
// the Content-Security-Policy or of Trusted Types (Chromium reports both
// as SEVERE).
func checkConsole(t *testing.T, b *browsertest.Browser) {
	t.Helper()
	logs, err := b.Logs()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		// The API's 4xx answers (a wrong token, a refused removal) are
		// expected; anything else severe is not.
		if l.Level == "SEVERE" && !strings.Contains(l.Message, "the server responded with a status of 4") {
			t.Errorf("console: %s %s", l.Level, l.Message)
		}
	}
}

func saveScreenshot(t *testing.T, b *browsertest.Browser, docs bool) {
	t.Helper()
	png, err := b.Screenshot()
	must(t, err)
	dir := os.Getenv("TETHER_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "manager.png")
	must(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot of the manager UI: %s (set TETHER_SCREENSHOT_DIR to keep it)", path)
	if docs {
		must(t, os.WriteFile(filepath.Join("..", "docs", "img", "manager.png"), png, 0o644))
		t.Log("updated docs/img/manager.png")
	}
}

// traffic is users browsing through a balancer until the test ends.
type traffic struct {
	mu    sync.Mutex
	pause time.Duration // between a user's requests
}

func startTraffic(t *testing.T, e *env, bal string, users int) *traffic {
	tr := &traffic{pause: 50 * time.Millisecond}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	base := e.front[bal].URL
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cookie := hit(base+"/login", "")
			for n := 0; ; n++ {
				tr.mu.Lock()
				pause := tr.pause
				tr.mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(pause + time.Duration(i)*time.Millisecond): // think time
				}
				hit(base+"/page", cookie)
				if i%4 == 0 && n%40 == 39 { // some users log out and come back
					hit(base+"/logout", cookie)
					cookie = hit(base+"/login", "")
				}
			}
		}()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	return tr
}

// hit sends one request with the session cookie and returns the session
// cookie after it.
func hit(u, cookie string) string {
	r, _ := http.NewRequest("GET", u, nil)
	if cookie != "" {
		r.Header.Set("Cookie", "JSESSIONID="+cookie)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return cookie
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "JSESSIONID" {
			cookie = c.Value
		}
	}
	return cookie
}

// vary changes the users' pace for d, so that the charts have a shape.
func (tr *traffic) vary(d time.Duration) {
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		tr.mu.Lock()
		tr.pause = time.Duration(20+(i%6)*25) * time.Millisecond
		tr.mu.Unlock()
		time.Sleep(2 * time.Second) // shapes the screenshot's charts; nothing waits on an outcome
	}
}
