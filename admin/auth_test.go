package admin

import (
	"strings"
	"testing"

	"github.com/tetherlb/tether/balancer"
)

func TestEveryRequestNeedsTheToken(t *testing.T) {
	e := newEnv(t, envConfig{})
	tests := []struct {
		name   string
		r      req
		status int
	}{
		{"healthz needs none", req{method: "GET", path: "/healthz"}, 200},
		{"the page needs none", req{method: "GET", path: "/"}, 200},
		{"no token", req{method: "GET", path: "/api/v1/balancers"}, 401},
		{"wrong token", req{method: "GET", path: "/api/v1/balancers", token: "nope"}, 401},
		{"token prefix", req{method: "GET", path: "/api/v1/balancers", token: rwToken[:10]}, 401},
		{"token with a suffix", req{method: "GET", path: "/api/v1/balancers", token: rwToken + "x"}, 401},
		{"token in the query string", req{method: "GET", path: "/api/v1/balancers?token=" + rwToken + "&access_token=" + rwToken}, 401},
		{"token in a cookie", req{method: "GET", path: "/api/v1/balancers", header: map[string]string{"Cookie": "token=" + rwToken}}, 401},
		{"basic scheme", req{method: "GET", path: "/api/v1/balancers", header: map[string]string{"Authorization": "Basic " + rwToken}}, 401},
		{"bearer without token", req{method: "GET", path: "/api/v1/balancers", header: map[string]string{"Authorization": "Bearer "}}, 401},
		{"lower-case scheme", req{method: "GET", path: "/api/v1/balancers", header: map[string]string{"Authorization": "bearer " + rwToken}}, 200},
		{"read-write token", req{method: "GET", path: "/api/v1/balancers", token: rwToken}, 200},
		{"read-only token reads", req{method: "GET", path: "/api/v1/balancers", token: roToken}, 200},
		{"read-only token reads the audit log", req{method: "GET", path: "/api/v1/audit", token: roToken}, 200},
		{"metrics need a token", req{method: "GET", path: "/metrics"}, 401},
		{"events need a token", req{method: "GET", path: "/api/v1/events"}, 401},
		{"no token, no change", req{method: "PATCH", path: "/api/v1/balancers/web/members/n1", body: MemberChange{State: str("stopped")}}, 401},
		{"read-only token cannot drain", req{method: "PATCH", path: "/api/v1/balancers/web/members/n1", token: roToken, body: MemberChange{State: str("draining")}}, 403},
		{"read-only token cannot add", req{method: "POST", path: "/api/v1/balancers/web/members", token: roToken, body: MemberSpec{Route: "n9", URL: "http://127.0.0.1:1"}}, 403},
		{"read-only token cannot remove", req{method: "DELETE", path: "/api/v1/balancers/web/members/n1?force=true", token: roToken}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.do(tt.r)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.status >= 400 {
				if a.errorText() == "" {
					t.Errorf("error answer without a JSON error: %s", a.body)
				}
				if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("Content-Type %q", ct)
				}
			}
			if tt.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer")
			}
		})
	}
	// None of the refused changes changed anything.
	for _, rt := range []string{"n1", "n2", "n3"} {
		if s := e.member("web", rt).State(); s != balancer.Active {
			t.Errorf("%s is %v after refused changes", rt, s)
		}
	}
	if n := len(e.audit()); n != 0 {
		t.Errorf("%d audit entries after refused changes", n)
	}
}

func TestWhoami(t *testing.T) {
	e := newEnv(t, envConfig{})
	for token, want := range map[string]string{rwToken: "read-write", roToken: "read-only"} {
		var w Whoami
		e.do(req{method: "GET", path: "/api/v1/whoami", token: token}).decode(t, &w)
		if w.Role != want {
			t.Errorf("role %q, want %q", w.Role, want)
		}
	}
}

func TestCrossOriginChangesAreRefused(t *testing.T) {
	e := newEnv(t, envConfig{})
	own := e.srv.URL
	tests := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"no browser headers (curl, tether ctl)", nil, 200},
		{"own origin", map[string]string{"Origin": own, "Sec-Fetch-Site": "same-origin"}, 200},
		{"own origin, no fetch metadata", map[string]string{"Origin": own}, 200},
		{"allowed origin", map[string]string{"Origin": "https://ops.example.com", "Sec-Fetch-Site": "cross-site"}, 200},
		{"allowed origin, other case and slash", map[string]string{"Origin": "HTTPS://OPS.example.com/"}, 200},
		{"other site", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, 403},
		{"other site, no fetch metadata", map[string]string{"Origin": "https://evil.example"}, 403},
		{"same site, other port", map[string]string{"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}, 403},
		{"own host, other scheme", map[string]string{"Origin": strings.Replace(own, "http:", "https:", 1)}, 403},
		{"null origin", map[string]string{"Origin": "null"}, 403},
		{"cross-site fetch metadata only", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site fetch metadata only", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"user-initiated fetch metadata only", map[string]string{"Sec-Fetch-Site": "none"}, 403},
		{"own origin but cross-site metadata", map[string]string{"Origin": own, "Sec-Fetch-Site": "cross-site"}, 403},
	}
	weight := 1
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			weight++
			before := e.member("web", "n1").Weight()
			a := e.do(req{method: "PATCH", path: "/api/v1/balancers/web/members/n1", token: rwToken, body: MemberChange{Weight: num(weight)}, header: tt.header})
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			after := e.member("web", "n1").Weight()
			if tt.status == 403 {
				if after != before {
					t.Errorf("refused change applied: weight %d -> %d", before, after)
				}
				if !strings.Contains(a.errorText(), "cross-origin") {
					t.Errorf("error %q does not say why", a.errorText())
				}
			} else if after != weight {
				t.Errorf("weight %d, want %d", after, weight)
			}
		})
	}
	// Changes from the same site by DELETE and POST are checked too.
	for _, r := range []req{
		{method: "POST", path: "/api/v1/balancers/web/members", body: MemberSpec{Route: "n9", URL: "http://127.0.0.1:9"}},
		{method: "DELETE", path: "/api/v1/balancers/web/members/n2?force=true"},
	} {
		r.token, r.header = rwToken, map[string]string{"Origin": "https://evil.example"}
		if a := e.do(r); a.status != 403 {
			t.Errorf("%s %s from another origin: %d", r.method, r.path, a.status)
		}
	}
	if e.member("web", "n9") != nil || e.member("web", "n2") == nil {
		t.Error("a refused add or remove was applied")
	}
}

func TestCORSOnlyForAllowedOrigins(t *testing.T) {
	e := newEnv(t, envConfig{})
	pre := func(origin string) answer {
		return e.do(req{method: "OPTIONS", path: "/api/v1/balancers/web/members/n1", header: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "authorization,content-type",
		}})
	}
	a := pre("https://ops.example.com")
	if a.status != 204 || a.header.Get("Access-Control-Allow-Origin") != "https://ops.example.com" ||
		!strings.Contains(a.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight from an allowed origin: %d %v", a.status, a.header)
	}
	if a.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Error("credentials (cookies) must never be allowed")
	}
	a = pre("https://evil.example")
	if a.status != 403 || a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", a.status, a.header)
	}
	a = e.do(req{method: "GET", path: "/api/v1/balancers", token: rwToken, header: map[string]string{"Origin": "https://evil.example"}})
	if a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("answer readable by another origin")
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, r := range []req{
		{method: "GET", path: "/"},
		{method: "GET", path: "/ui/app.js"},
		{method: "GET", path: "/api/v1/balancers", token: rwToken},
		{method: "GET", path: "/api/v1/balancers"},
		{method: "GET", path: "/nope"},
	} {
		a := e.do(r)
		h := a.header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'", "require-trusted-types-for 'script'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", r.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP allows something unsafe: %q", r.path, csp)
		}
		for k, want := range map[string]string{
			"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s %q, want %q", r.path, k, got, want)
			}
		}
	}
	page := e.do(req{method: "GET", path: "/"})
	for _, bad := range []string{"<script>", "style=", "onclick", `src="http`, `href="http`, `src="//`, `href="//`} {
		if strings.Contains(string(page.body), bad) {
			t.Errorf("the page contains %q: inline code or an outside resource", bad)
		}
	}
	if ct := page.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("page Content-Type %q", ct)
	}
	js := e.do(req{method: "GET", path: "/ui/app.js"})
	if strings.Contains(string(js.body), "innerHTML") || strings.Contains(string(js.body), "insertAdjacentHTML") ||
		strings.Contains(string(js.body), "eval(") {
		t.Error("app.js uses an HTML sink or eval")
	}
	if a := e.do(req{method: "GET", path: "/ui/secret.txt"}); a.status != 404 {
		t.Errorf("unknown UI file: %d", a.status)
	}
}

func TestUnknownPathsAndMethodsAnswerJSON(t *testing.T) {
	e := newEnv(t, envConfig{})
	tests := []struct {
		r      req
		status int
		allow  string
	}{
		{req{method: "GET", path: "/api/v2/balancers", token: rwToken}, 404, ""},
		{req{method: "PUT", path: "/api/v1/balancers/web/members/n1", token: rwToken, body: "{}"}, 405, "GET, PATCH, DELETE"},
		{req{method: "POST", path: "/api/v1/balancers", token: rwToken, body: "{}"}, 405, "GET"},
		{req{method: "GET", path: "/api/v1/balancers/nope", token: rwToken}, 404, ""},
		{req{method: "GET", path: "/api/v1/balancers/web/members/nope", token: rwToken}, 404, ""},
	}
	for _, tt := range tests {
		a := e.do(tt.r)
		if a.status != tt.status || a.errorText() == "" {
			t.Errorf("%s %s: %d %s, want %d with a JSON error", tt.r.method, tt.r.path, a.status, a.body, tt.status)
		}
		if a.header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: Allow %q, want %q", tt.r.method, tt.r.path, a.header.Get("Allow"), tt.allow)
		}
	}
}
