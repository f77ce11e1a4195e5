package balancer

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/tetherlb/tether/internal/proctest"
)

func TestAccessLogFieldsAndRedaction(t *testing.T) {
	eachEngine(t, testAccessLogFieldsAndRedaction)
}

// testAccessLogFieldsAndRedaction sends session ids in a path parameter, a
// query parameter, the Referer and a cookie: the access log has the
// user agent, the referer and the duration in seconds, and no session id.
func testAccessLogFieldsAndRedaction(t *testing.T, e engine) {
	n1 := newBackend(t, "n1")
	var buf proctest.Buffer
	opts := fastOptions()
	opts.AccessLog = slog.New(slog.NewJSONHandler(&buf, nil))
	opts.StickyNames = []string{"SID"}
	_, srv := e.front(t, opts, memberOf(t, n1, 1, Active))
	const secret = "S3cr3tSessionId"
	req, err := http.NewRequest("GET", srv.URL+"/shop;jsessionid="+secret+".n1/cart;SID="+secret+"2.n1?a=1&sid="+secret+"3.n1&b=2", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "tether-test/1.0")
	req.Header.Set("Referer", "https://shop.example.com/list;JSESSIONID="+secret+"4.n1?x=1")
	req.Header.Set("Cookie", "SID="+secret+"5.n1")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	line := strings.TrimSpace(buf.String())
	if strings.Contains(line, secret) {
		t.Fatalf("the access log holds a session id: %s", line)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatalf("access log line %q: %v", line, err)
	}
	want := map[string]any{
		"uri":        "/shop;jsessionid=REDACTED/cart;SID=REDACTED?a=1&sid=REDACTED&b=2",
		"referer":    "https://shop.example.com/list;JSESSIONID=REDACTED?x=1",
		"user_agent": "tether-test/1.0",
		"route":      "n1",
		"member":     "n1",
		"sticky":     "sticky",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
	// Seconds as a float: a request on loopback takes well under a
	// second, and is not a whole number of nanoseconds.
	if d, ok := rec["duration"].(float64); !ok || d <= 0 || d >= 60 {
		t.Errorf("duration = %v (%T), want seconds as a number between 0 and 60", rec["duration"], rec["duration"])
	}
}

// TestOutcomeNames: every outcome has one name, usable as a Prometheus
// label value, and none is shared.
func TestOutcomeNames(t *testing.T) {
	seen := map[string]Outcome{}
	for o := Outcome(0); int(o) < OutcomeCount; o++ {
		name := o.String()
		if name == "" || name == "unknown" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz_") != "" {
			t.Errorf("outcome %d is named %q: want lower case letters and _", o, name)
		}
		if p, dup := seen[name]; dup {
			t.Errorf("outcomes %d and %d are both %q", p, o, name)
		}
		seen[name] = o
	}
	if got := Outcome(OutcomeCount).String(); got != "unknown" {
		t.Errorf("Outcome(OutcomeCount) = %q, want unknown", got)
	}
}
