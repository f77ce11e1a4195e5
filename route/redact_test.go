package route

import (
	"strings"
	"testing"
)

func TestRedactTarget(t *testing.T) {
	names := []string{"JSESSIONID", "PHPSESSID"}
	tests := []struct{ name, target, want string }{
		{"nothing", "/cart/items?a=1&b=2", "/cart/items?a=1&b=2"},
		{"path parameter", "/cart;jsessionid=ABC123.n1", "/cart;jsessionid=REDACTED"},
		{"path parameter before more path", "/a;jsessionid=ABC.n1/b;x=1", "/a;jsessionid=REDACTED/b;x=1"},
		{"path parameter and query", "/a;JSESSIONID=ABC.n1?q=1&jsessionid=DEF.n2", "/a;JSESSIONID=REDACTED?q=1&jsessionid=REDACTED"},
		{"second name in query", "/?PHPSESSID=xyz.n3", "/?PHPSESSID=REDACTED"},
		{"empty value", "/a;jsessionid=?jsessionid=", "/a;jsessionid=REDACTED?jsessionid=REDACTED"},
		{"name is a prefix of another", "/a;jsessionidx=1?jsessionid2=2", "/a;jsessionidx=1?jsessionid2=2"},
		{"query value mentions the name", "/a?next=jsessionid=1", "/a?next=jsessionid=1"},
		{"several parameters", "/a;v=1;jsessionid=S.n1;w=2", "/a;v=1;jsessionid=REDACTED;w=2"},
		{"fragment stays with the value", "/a?jsessionid=S.n1#top", "/a?jsessionid=REDACTED"},
		{"semicolon in the query", "/a?x=1;jsessionid=S", "/a?x=1;jsessionid=S"},
		{"no names", "/a;jsessionid=S", "/a;jsessionid=S"},
		{"absolute form", "http://shop.example.com/a;jsessionid=S.n1", "http://shop.example.com/a;jsessionid=REDACTED"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := names
			if tt.name == "no names" {
				n = nil
			}
			if got := RedactTarget(tt.target, n); got != tt.want {
				t.Errorf("RedactTarget(%q) = %q, want %q", tt.target, got, tt.want)
			}
		})
	}
}

func TestRedactTargetDoesNotAllocateWithoutSessionIDs(t *testing.T) {
	names := []string{"JSESSIONID"}
	if n := testing.AllocsPerRun(100, func() { RedactTarget("/cart/items;v=1?a=1&b=2", names) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

// FuzzRedactTarget: whatever the target, no value found by PathParam or
// QueryParam under one of the names survives redaction, and a target
// without such a parameter comes back unchanged.
func FuzzRedactTarget(f *testing.F) {
	for _, s := range []string{"/a;jsessionid=S.n1?jsessionid=T.n2", "/;JSESSIONID=", "/a?b&jsessionid=x&", "/a;;jsessionid=x/;", "?=&=;"} {
		f.Add(s)
	}
	names := []string{"jsessionid"}
	f.Fuzz(func(t *testing.T, target string) {
		got := RedactTarget(target, names)
		path, query, _ := strings.Cut(got, "?")
		if v, ok := PathParam(path, "jsessionid"); ok && v != Redacted && !strings.HasPrefix(v, Redacted) {
			t.Fatalf("RedactTarget(%q) = %q keeps path parameter %q", target, got, v)
		}
		if v, ok := QueryParam(query, "jsessionid"); ok && v != Redacted {
			t.Fatalf("RedactTarget(%q) = %q keeps query parameter %q", target, got, v)
		}
		if !strings.Contains(strings.ToLower(target), "jsessionid=") && got != target {
			t.Fatalf("RedactTarget(%q) = %q changed a target without a session id", target, got)
		}
	})
}
