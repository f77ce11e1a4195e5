package balancer

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/route"
)

// stickyAttempt returns an attempt of a balancer in mode m with members
// n1 and n2, and routes for prefix mode answered by n1.
func stickyAttempt(t testing.TB, m StickyMode) *attempt {
	o := modeOptions(m)
	o.Logger = fastOptions().Logger
	u, _ := url.Parse("http://127.0.0.1:1")
	b, err := New(o, []MemberConfig{{URL: u, Route: "n1"}, {URL: u, Route: "n2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	a := &attempt{}
	a.begin(b, b.cur.Load())
	a.active = b.pool.Lookup("n1")
	return a
}

func TestCookieHeaderForMember(t *testing.T) {
	tests := []struct {
		mode     StickyMode
		in, want string // want "" : the header is left out
	}{
		{StickyInsert, "TETHERID=n1~x~y~z~m", ""},
		{StickyInsert, "a=1; TETHERID=n1~x; b=2", "a=1; b=2"},
		{StickyInsert, " a=1 ;; TETHERID=v;TETHERID=w ", "a=1"},
		{StickyInsert, "TETHERIDX=1; XTETHERID=2", "TETHERIDX=1; XTETHERID=2"},
		{StickyInsert, "flag; a=1", "flag; a=1"},
		{StickyPrefix, "JSESSIONID=n1~ABC", "JSESSIONID=ABC"},
		{StickyPrefix, `a=1; JSESSIONID="n2~ABC"; jsessionid=n1~x~y`, "a=1; JSESSIONID=ABC; jsessionid=x~y"},
		{StickyPrefix, "JSESSIONID=ABC; other=n1~ABC", "JSESSIONID=ABC; other=n1~ABC"},
		{StickyPrefix, "JSESSIONID=n1~; JSESSIONID=~ABC; JSESSIONID=bad route~x", "JSESSIONID=n1~; JSESSIONID=~ABC; JSESSIONID=bad route~x"},
		{StickyPrefix, "", ""},
	}
	for _, tt := range tests {
		a := stickyAttempt(t, tt.mode)
		got, ok := a.appendCookieHeader(nil, tt.in)
		if string(got) != tt.want || ok != (tt.want != "") {
			t.Errorf("%v %q: %q %v, want %q", tt.mode, tt.in, got, ok, tt.want)
		}
	}
}

func TestPrefixSetCookie(t *testing.T) {
	tests := []struct{ in, want string }{ // want "": passed as it came
		{"JSESSIONID=ABC; Path=/; HttpOnly", "JSESSIONID=n1~ABC; Path=/; HttpOnly"},
		{`JSESSIONID="ABC"; Path=/`, `JSESSIONID="n1~ABC"; Path=/`},
		{"JSESSIONID= ABC", "JSESSIONID= n1~ABC"},
		{"jsessionid=ABC", "jsessionid=n1~ABC"},
		{"JSESSIONID=; Max-Age=0", ""},
		{"JSESSIONID=ABC; Max-Age=0", ""},
		{"OTHER=ABC", ""},
		{"garbage", ""},
	}
	a := stickyAttempt(t, StickyPrefix)
	for _, tt := range tests {
		got, ok := a.prefixSetCookie(nil, tt.in)
		if string(got) != tt.want || ok != (tt.want != "") {
			t.Errorf("%q: %q %v, want %q", tt.in, got, ok, tt.want)
		}
	}
}

// FuzzStickyCookieHeader: whatever a client sends, finding the session
// and rewriting the Cookie header for the member do not fail, the member
// never gets Tether's cookie, and only a cookie Tether signed is valid.
func FuzzStickyCookieHeader(f *testing.F) {
	f.Add("TETHERID=n1~AAAAAAAAAAAAAAAA~tph4p7~tph4p7~bxd_3TRF0b1sv_8oNRh_5g; JSESSIONID=n2~ABC")
	f.Add(`a=1; JSESSIONID="n1~x~y"; TETHERID=~~~~; TETHERID`)
	f.Add(";;; =; TETHERID=n1~zzzzzzzzzzzzz~-1~0~")
	ins, pre := stickyAttempt(f, StickyInsert), stickyAttempt(f, StickyPrefix)
	f.Fuzz(func(t *testing.T, header string) {
		for _, a := range []*attempt{ins, pre} {
			a.req.cookies = []string{header}
			a.insert = insertCookie{}
			id, rt, _ := a.session()
			if a == ins && id != "" {
				t.Fatalf("unsigned %q accepted: %q %q", header, id, rt)
			}
			if a == pre && id != "" && !strings.Contains(header, rt+"~"+id) && !strings.Contains(header, `"`) {
				t.Fatalf("session %q %q not in %q", id, rt, header)
			}
			out, _ := a.appendCookieHeader(nil, header)
			if a == ins {
				if _, _, found := route.Cookie(string(out), "TETHERID"); found {
					t.Fatalf("%q went to the member as %q", header, out)
				}
			}
			if a == pre && id != "" && !strings.Contains(string(out), "="+id) {
				t.Fatalf("%q went to the member as %q, without the session's value %q", header, out, id)
			}
		}
	})
}

// TestManagedRoutingDoesNotAllocate: routing a sticky request costs no
// allocation in insert mode (the signature checked) or prefix mode.
func TestManagedRoutingDoesNotAllocate(t *testing.T) {
	if raceDetector {
		t.Skip("the race detector drops pooled objects (the MACs of insert mode)")
	}
	now := time.Now()
	for _, tc := range []struct {
		mode   StickyMode
		cookie string
	}{
		{StickyInsert, "a=1; TETHERID=" + cookieValue(signedWith(t, testKey, "n2", now))},
		{StickyPrefix, "a=1; JSESSIONID=n2~8F3A2B9C1D4E5F60718293A4B5C6D7E8; b=2"},
	} {
		opts := modeOptions(tc.mode)
		opts.Now = func() time.Time { return now }
		bal, err := New(opts, []MemberConfig{cfg("n1", "http://127.0.0.1:1", 1, Active), cfg("n2", "http://127.0.0.1:2", 1, Active)})
		if err != nil {
			t.Fatal(err)
		}
		a := new(attempt)
		r := routingRequest(tc.cookie)
		if m := routeOnce(bal, a, r); m.route != "n2" {
			t.Fatalf("%v: routed to %s", tc.mode, m.route)
		}
		if n := testing.AllocsPerRun(200, func() { routeOnce(bal, a, r) }); n != 0 {
			t.Errorf("%v: %v allocations per request", tc.mode, n)
		}
		bal.Close()
	}
}

// BenchmarkManagedRouting is the routing cost of a sticky request in each
// mode (insert: the cookie's signature checked).
func BenchmarkManagedRouting(b *testing.B) {
	now := time.Now()
	for _, tc := range []struct {
		mode   StickyMode
		cookie string
	}{
		{StickyRoute, benchCookie},
		{StickyInsert, "_ga=GA1.2.3; theme=dark; TETHERID=" + cookieValue(signedWith(b, testKey, "n2", now)) + "; lang=en"},
		{StickyPrefix, "_ga=GA1.2.3; theme=dark; JSESSIONID=n2~8F3A2B9C1D4E5F60718293A4B5C6D7E8; lang=en"},
	} {
		b.Run(tc.mode.String(), func(b *testing.B) {
			opts := modeOptions(tc.mode)
			bal, err := New(opts, []MemberConfig{cfg("n1", "http://127.0.0.1:1", 1, Active), cfg("n2", "http://127.0.0.1:2", 1, Active)})
			if err != nil {
				b.Fatal(err)
			}
			defer bal.Close()
			a, r := new(attempt), routingRequest(tc.cookie)
			b.ReportAllocs()
			for b.Loop() {
				routeOnce(bal, a, r)
			}
		})
	}
}
