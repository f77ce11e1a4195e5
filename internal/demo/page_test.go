package demo_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherlb/tether/internal/browsertest"
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
	served := b.TextOf(t, ".node")
	killed := strings.TrimPrefix(served, "served by ")
	if b.TextOf(t, "#session .route") != "."+killed {
		t.Fatalf("the route shown is %q, served by %q", b.TextOf(t, "#session .route"), served)
	}

	b.ClickWhenReady(t, "#kill-me")
	b.WaitText(t, "#panel-status", "Killed "+killed)
	addItem(t, b, "fig") // the next request: another node takes the session over
	now := strings.TrimPrefix(b.TextOf(t, ".node"), "served by ")
	if now == killed || b.TextOf(t, "#session .route") != "."+now {
		t.Fatalf("after the kill: served by %q with route %q", now, b.TextOf(t, "#session .route"))
	}
	if items := b.TextOf(t, "#items"); strings.Join(strings.Fields(items), ",") != "apple,pear,plum,fig" {
		t.Fatalf("items after the kill: %q", items)
	}
	b.WaitText(t, "#nodes", "killed")
	b.WaitText(t, "#nodes", "majority; owns 1") // the new owner's view of the cluster

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
	b.ClickWhenReady(t, `form.add button[type="submit"]`)
	b.WaitText(t, "#items", item)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
