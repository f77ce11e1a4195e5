// Package browsertest drives a real headless Chromium from tests, through
// chromedriver and the W3C WebDriver protocol (HTTP and JSON), with
// nothing but the standard library: navigate, find elements by CSS
// selector, click, type, read text, run scripts, read the console and take
// screenshots.
//
// Start skips the test when Chromium or chromedriver is not installed
// (Debian: apt-get install chromium chromium-driver); CI installs both.
package browsertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// Options configures Start. Zero values mean the defaults given.
type Options struct {
	// Chromium is the browser binary. Default: $TETHER_CHROMIUM, else
	// /usr/bin/chromium.
	Chromium string
	// Driver is the chromedriver binary. Default: $TETHER_CHROMEDRIVER,
	// else chromedriver from PATH, else /usr/bin/chromedriver.
	Driver string
	// Width and Height are the window size. Default 1440×1000.
	Width, Height int
	// StartTimeout bounds starting chromedriver and the browser. Default 60s.
	StartTimeout time.Duration
}

// Browser is a Chromium session. Its methods are safe to call from one
// goroutine at a time.
type Browser struct {
	t       testing.TB
	base    string // chromedriver's URL
	session string
	http    *http.Client
	driver  *proctest.Proc
	once    sync.Once
}

// Element is an element of the page.
type Element struct {
	b  *Browser
	id string
}

// Error is an error answer of the WebDriver protocol.
type Error struct {
	// Code is the WebDriver error code, like "no such element".
	Code    string
	Message string
}

func (e *Error) Error() string { return "webdriver: " + e.Code + ": " + e.Message }

// IsNoSuchElement reports whether err says that no element matched.
func IsNoSuchElement(err error) bool {
	var we *Error
	return errors.As(err, &we) && (we.Code == "no such element" || we.Code == "stale element reference")
}

// elementKey is the W3C name of an element reference in JSON.
const elementKey = "element-6066-11e4-a52e-4f735466cecf"

// Lookup finds the browser and the driver, or says which is missing.
func Lookup(o Options) (chromium, driver string, err error) {
	chromium = firstOf(o.Chromium, os.Getenv("TETHER_CHROMIUM"), "/usr/bin/chromium")
	driver = firstOf(o.Driver, os.Getenv("TETHER_CHROMEDRIVER"))
	if driver == "" {
		if p, err := exec.LookPath("chromedriver"); err == nil {
			driver = p
		} else {
			driver = "/usr/bin/chromedriver"
		}
	}
	for _, p := range []string{chromium, driver} {
		if _, err := os.Stat(p); err != nil {
			return "", "", fmt.Errorf("%s not found (Debian: apt-get install chromium chromium-driver): %w", p, err)
		}
	}
	return chromium, driver, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Start runs chromedriver on a free loopback port and opens a headless
// Chromium session; both end when the test ends. It skips the test if
// either is not installed.
func Start(t testing.TB, o Options) *Browser {
	t.Helper()
	chromium, driver, err := Lookup(o)
	if err != nil {
		t.Skipf("skipping the browser test: %v", err)
	}
	if o.Width == 0 {
		o.Width, o.Height = 1440, 1000
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	profile := t.TempDir() // removed after Close, registered below, has run
	b := &Browser{t: t, http: &http.Client{Timeout: 2 * time.Minute}}
	if err := b.startDriver(t, driver, o.StartTimeout); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.newSession(chromium, profile, o); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *Browser) startDriver(t testing.TB, driver string, timeout time.Duration) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b.base = "http://127.0.0.1:" + strconv.Itoa(port)
	b.driver = proctest.StartCmd(t, "chromedriver", exec.Command(driver, "--port="+strconv.Itoa(port), "--allowed-ips=127.0.0.1"))
	deadline := time.Now().Add(timeout)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		var st struct {
			Ready bool `json:"ready"`
		}
		if err := b.call(http.MethodGet, "/status", nil, &st); err == nil && st.Ready {
			return nil
		}
		if b.driver.Exited() {
			return fmt.Errorf("chromedriver exited: %s", b.driver.Output())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chromedriver not ready within %v: %s", timeout, b.driver.Output())
		}
		time.Sleep(delay) // polling interval
	}
}

func (b *Browser) newSession(chromium, profile string, o Options) error {
	caps := map[string]any{
		"capabilities": map[string]any{
			"alwaysMatch": map[string]any{
				"browserName": "chrome",
				"goog:chromeOptions": map[string]any{
					"binary": chromium,
					"args": []string{
						"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
						"--disable-background-networking", "--disable-component-update", "--disable-sync",
						"--no-first-run", "--no-default-browser-check", "--disable-extensions",
						"--user-data-dir=" + profile, fmt.Sprintf("--window-size=%d,%d", o.Width, o.Height),
					},
				},
				"goog:loggingPrefs": map[string]string{"browser": "ALL"},
			},
		},
	}
	var res struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(http.MethodPost, "/session", caps, &res); err != nil {
		return fmt.Errorf("new browser session: %w", err)
	}
	b.session = res.SessionID
	return b.call(http.MethodPost, b.path("/window/rect"), map[string]int{"width": o.Width, "height": o.Height}, nil)
}

// Close ends the session and stops chromedriver and the browser.
func (b *Browser) Close() {
	b.once.Do(func() {
		if b.session != "" {
			b.call(http.MethodDelete, b.path(""), nil, nil)
		}
		if b.driver != nil {
			syscall.Kill(-b.driver.Pid(), syscall.SIGKILL) // chromedriver and the browser it started
			b.driver.Kill()
		}
	})
}

func (b *Browser) path(p string) string { return "/session/" + b.session + p }

// call sends one WebDriver command and decodes its "value" into out.
func (b *Browser) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return fmt.Errorf("webdriver %s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		json.Unmarshal(env.Value, &e)
		return &Error{Code: e.Error, Message: e.Message}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Value, out)
}

// Navigate loads url and waits for the page to load.
func (b *Browser) Navigate(url string) error {
	return b.call(http.MethodPost, b.path("/url"), map[string]string{"url": url}, nil)
}

// Find returns the first element matching the CSS selector.
func (b *Browser) Find(css string) (*Element, error) {
	var ref map[string]string
	if err := b.call(http.MethodPost, b.path("/element"), map[string]string{"using": "css selector", "value": css}, &ref); err != nil {
		return nil, err
	}
	return &Element{b: b, id: ref[elementKey]}, nil
}

// FindAll returns every element matching the CSS selector.
func (b *Browser) FindAll(css string) ([]*Element, error) {
	var refs []map[string]string
	if err := b.call(http.MethodPost, b.path("/elements"), map[string]string{"using": "css selector", "value": css}, &refs); err != nil {
		return nil, err
	}
	out := make([]*Element, len(refs))
	for i, r := range refs {
		out[i] = &Element{b: b, id: r[elementKey]}
	}
	return out, nil
}

// Execute runs script (a function body: use "return" and arguments[i])
// in the page and decodes its result into out, which may be nil.
func (b *Browser) Execute(out any, script string, args ...any) error {
	if args == nil {
		args = []any{}
	}
	return b.call(http.MethodPost, b.path("/execute/sync"), map[string]any{"script": script, "args": args}, out)
}

// Screenshot returns a PNG of the window.
func (b *Browser) Screenshot() ([]byte, error) {
	var s string
	if err := b.call(http.MethodGet, b.path("/screenshot"), nil, &s); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(s)
}

// AcceptAlert accepts the open alert or confirm dialog.
func (b *Browser) AcceptAlert() error {
	return b.call(http.MethodPost, b.path("/alert/accept"), map[string]any{}, nil)
}

// LogEntry is a message of the browser's console.
type LogEntry struct {
	Level   string `json:"level"` // SEVERE, WARNING, INFO …
	Message string `json:"message"`
}

// Logs returns the console messages since the last call (errors, CSP
// violations, console.log).
func (b *Browser) Logs() ([]LogEntry, error) {
	var out []LogEntry
	err := b.call(http.MethodPost, b.path("/se/log"), map[string]string{"type": "browser"}, &out)
	return out, err
}

// Click clicks the element.
func (e *Element) Click() error {
	return e.b.call(http.MethodPost, e.b.path("/element/"+e.id+"/click"), map[string]any{}, nil)
}

// SendKeys types text into the element.
func (e *Element) SendKeys(text string) error {
	return e.b.call(http.MethodPost, e.b.path("/element/"+e.id+"/value"), map[string]string{"text": text}, nil)
}

// Text returns the element's rendered text.
func (e *Element) Text() (string, error) {
	var s string
	err := e.b.call(http.MethodGet, e.b.path("/element/"+e.id+"/text"), nil, &s)
	return s, err
}

// Property returns a DOM property of the element (like "disabled").
func (e *Element) Property(name string, out any) error {
	return e.b.call(http.MethodGet, e.b.path("/element/"+e.id+"/property/"+name), nil, out)
}
