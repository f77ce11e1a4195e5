package demo_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/browsertest"
	"github.com/tetherlb/tether/internal/proctest"
)

// TestDemoPageInChromium uses the demo page in real headless Chromium:
// shop, click "Kill the node serving me", shop on, and keep a screenshot
// ($TETHER_SCREENSHOT_DIR; TETHER_UPDATE_SCREENSHOTS=1 writes
// docs/img/demo.png, which the README shows).
func TestDemoPageInChromium(t *testing.T) {
	b := browsertest.Start(t, browsertest.Options{Width: 1100, Height: 1250})
	d := startDemo(t)
	must(t, b.Navigate(d.shop))
	for _, item := range []string{"apple", "pear", "plum"} {
		addItem(t, b, item)
	}
	served := text(t, b, ".node")
	killed := strings.TrimPrefix(served, "served by ")
	if text(t, b, "#session .route") != "."+killed {
		t.Fatalf("the route shown is %q, served by %q", text(t, b, "#session .route"), served)
	}

	click(t, b, "#kill-me")
	waitText(t, b, "#panel-status", "Killed "+killed)
	addItem(t, b, "fig") // the next request: another node takes the session over
	now := strings.TrimPrefix(text(t, b, ".node"), "served by ")
	if now == killed || text(t, b, "#session .route") != "."+now {
		t.Fatalf("after the kill: served by %q with route %q", now, text(t, b, "#session .route"))
	}
	if items := text(t, b, "#items"); strings.Join(strings.Fields(items), ",") != "apple,pear,plum,fig" {
		t.Fatalf("items after the kill: %q", items)
	}
	waitText(t, b, "#nodes", "killed")

	png, err := b.Screenshot()
	must(t, err)
	dir := os.Getenv("TETHER_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	must(t, os.WriteFile(filepath.Join(dir, "demo.png"), png, 0o644))
	t.Logf("screenshot of the demo page: %s", filepath.Join(dir, "demo.png"))
	if os.Getenv("TETHER_UPDATE_SCREENSHOTS") == "1" {
		must(t, os.WriteFile(filepath.Join("..", "..", "docs", "img", "demo.png"), png, 0o644))
		t.Log("updated docs/img/demo.png")
	}
	logs, err := b.Logs()
	must(t, err)
	for _, l := range logs {
		if l.Level == "SEVERE" {
			t.Errorf("console: %s", l.Message)
		}
	}
}

func addItem(t *testing.T, b *browsertest.Browser, item string) {
	t.Helper()
	in, err := b.Find(`input[name="item"]`)
	must(t, err)
	must(t, in.SendKeys(item))
	click(t, b, `form.add button[type="submit"]`)
	waitText(t, b, "#items", item)
}

func click(t *testing.T, b *browsertest.Browser, css string) {
	t.Helper()
	proctest.Eventually(t, 20*time.Second, func() error {
		el, err := b.Find(css)
		if err != nil {
			return err
		}
		return el.Click()
	})
}

func text(t *testing.T, b *browsertest.Browser, css string) string {
	t.Helper()
	var s string
	proctest.Eventually(t, 20*time.Second, func() error {
		el, err := b.Find(css)
		if err != nil {
			return err
		}
		s, err = el.Text()
		return err
	})
	return s
}

func waitText(t *testing.T, b *browsertest.Browser, css, want string) {
	t.Helper()
	proctest.Eventually(t, 20*time.Second, func() error {
		el, err := b.Find(css)
		if err != nil {
			return err
		}
		got, err := el.Text()
		if err != nil {
			return err
		}
		if !strings.Contains(got, want) {
			return fmt.Errorf("%s shows %q, want %q", css, got, want)
		}
		return nil
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
