package route

import (
	"strings"
	"testing"
)

func TestCookie(t *testing.T) {
	tests := []struct {
		name, header, cookie string
		value, rest          string
		ok                   bool
	}{
		{"only cookie", "JSESSIONID=abc.n1", "JSESSIONID", "abc.n1", "", true},
		{"among others", "a=1; JSESSIONID=abc.n2; b=2", "JSESSIONID", "abc.n2", " b=2", true},
		{"no spaces", "a=1;JSESSIONID=abc.n2;b=2", "JSESSIONID", "abc.n2", "b=2", true},
		{"quoted", `JSESSIONID="abc.n1"`, "JSESSIONID", "abc.n1", "", true},
		{"spaces around equals", "JSESSIONID = abc.n1 ", "JSESSIONID", "abc.n1", "", true},
		{"name is a prefix of another", "JSESSIONIDX=zzz.n9; JSESSIONID=abc.n1", "JSESSIONID", "abc.n1", "", true},
		{"suffix of another name", "XJSESSIONID=zzz.n9", "JSESSIONID", "", "", false},
		{"case matters", "jsessionid=abc.n1", "JSESSIONID", "", "", false},
		{"absent", "a=1; b=2", "JSESSIONID", "", "", false},
		{"empty header", "", "JSESSIONID", "", "", false},
		{"empty name", "=x", "", "", "", false},
		{"no equals", "JSESSIONID; a=1", "JSESSIONID", "", "", false},
		{"empty value", "JSESSIONID=", "JSESSIONID", "", "", true},
		{"lone quote", `JSESSIONID="`, "JSESSIONID", `"`, "", true},
		{"only separators", ";;; ;", "JSESSIONID", "", "", false},
		{"first of two", "JSESSIONID=a.n1; JSESSIONID=b.n2", "JSESSIONID", "a.n1", " JSESSIONID=b.n2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, rest, ok := Cookie(tt.header, tt.cookie)
			if v != tt.value || rest != tt.rest || ok != tt.ok {
				t.Errorf("Cookie(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.header, tt.cookie, v, rest, ok, tt.value, tt.rest, tt.ok)
			}
		})
	}
}

func TestCookieSecondOfSameName(t *testing.T) {
	_, rest, _ := Cookie("JSESSIONID=a.n1; JSESSIONID=b.n2", "JSESSIONID")
	v, _, ok := Cookie(rest, "JSESSIONID")
	if !ok || v != "b.n2" {
		t.Fatalf("second cookie = %q, %v", v, ok)
	}
}

func TestPathParam(t *testing.T) {
	tests := []struct {
		name, path, param, value string
		ok                       bool
	}{
		{"end of path", "/app/cart;jsessionid=abc.n1", "jsessionid", "abc.n1", true},
		{"before more path", "/app;jsessionid=abc.n1/cart", "jsessionid", "abc.n1", true},
		{"before other param", "/app;jsessionid=abc.n1;v=2", "jsessionid", "abc.n1", true},
		{"after other param", "/app;v=2;jsessionid=abc.n1", "jsessionid", "abc.n1", true},
		{"query in path string", "/a;jsessionid=abc.n1?x=1", "jsessionid", "abc.n1", true},
		{"case matters", "/a;JSESSIONID=abc.n1", "jsessionid", "", false},
		{"prefix name", "/a;jsessionidx=abc.n1", "jsessionid", "", false},
		{"no equals", "/a;jsessionid", "jsessionid", "", false},
		{"empty value", "/a;jsessionid=", "jsessionid", "", true},
		{"no params", "/a/b/c", "jsessionid", "", false},
		{"trailing semicolon", "/a;", "jsessionid", "", false},
		{"empty name", "/a;=x", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := PathParam(tt.path, tt.param)
			if v != tt.value || ok != tt.ok {
				t.Errorf("PathParam(%q, %q) = %q, %v; want %q, %v", tt.path, tt.param, v, ok, tt.value, tt.ok)
			}
		})
	}
}

func TestQueryParam(t *testing.T) {
	tests := []struct {
		name, query, param, value string
		ok                        bool
	}{
		{"only", "jsessionid=abc.n1", "jsessionid", "abc.n1", true},
		{"among others", "a=1&jsessionid=abc.n1&b=2", "jsessionid", "abc.n1", true},
		{"prefix name", "jsessionidx=abc.n1", "jsessionid", "", false},
		{"suffix name", "xjsessionid=abc.n1", "jsessionid", "", false},
		{"no value", "jsessionid&a=1", "jsessionid", "", false},
		{"escaped stays raw", "jsessionid=abc%2En1", "jsessionid", "abc%2En1", true},
		{"empty", "", "jsessionid", "", false},
		{"only ampersands", "&&&", "jsessionid", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := QueryParam(tt.query, tt.param)
			if v != tt.value || ok != tt.ok {
				t.Errorf("QueryParam(%q, %q) = %q, %v; want %q, %v", tt.query, tt.param, v, ok, tt.value, tt.ok)
			}
		})
	}
}

func TestExtractionDoesNotAllocate(t *testing.T) {
	header := "_ga=GA1.2.3; theme=dark; JSESSIONID=8F3A2B9C1D.n2; lang=en"
	allocs := testing.AllocsPerRun(100, func() {
		v, _, _ := Cookie(header, "JSESSIONID")
		_, _, _ = Split(v, '.')
		_, _ = PathParam("/app/cart;jsessionid=abc.n1", "jsessionid")
		_, _ = QueryParam("a=1&jsessionid=abc.n1", "jsessionid")
	})
	if allocs != 0 {
		t.Fatalf("extraction allocated %v times per run", allocs)
	}
}

// FuzzExtract checks that no input makes the parsers panic, and that what
// they return is a piece of their input that Split agrees with.
func FuzzExtract(f *testing.F) {
	f.Add("JSESSIONID=abc.n1", "/a;jsessionid=abc.n1", "jsessionid=abc.n1", "JSESSIONID")
	f.Fuzz(func(t *testing.T, header, path, query, name string) {
		if v, rest, ok := Cookie(header, name); ok {
			if !strings.Contains(header, v) || !strings.HasSuffix(header, rest) {
				t.Fatalf("Cookie returned text not in its input: %q %q", v, rest)
			}
			if len(rest) >= len(header) {
				t.Fatalf("Cookie made no progress: rest %q of %q", rest, header)
			}
		}
		if v, ok := PathParam(path, name); ok && !strings.Contains(path, ";"+name+"="+v) {
			t.Fatalf("PathParam returned %q, not in %q", v, path)
		}
		if v, ok := QueryParam(query, name); ok && !strings.Contains(query, name+"="+v) {
			t.Fatalf("QueryParam returned %q, not in %q", v, query)
		}
		for _, s := range []string{header, path, query} {
			if id, r, ok := Split(s, '.'); ok {
				if id+"."+r != s || !Valid(r) {
					t.Fatalf("Split(%q) = %q, %q", s, id, r)
				}
			}
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	header := "_ga=GA1.2.3; theme=dark; JSESSIONID=8F3A2B9C1D4E5F60718293A4B5C6D7E8.n2; lang=en"
	b.ReportAllocs()
	for b.Loop() {
		v, _, _ := Cookie(header, "JSESSIONID")
		_, _, _ = Split(v, '.')
	}
}
