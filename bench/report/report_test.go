package main

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// rawLine builds one measurement row: rps over 1 s, p50/p99 in µs, proxy
// ticks at 100 Hz, core counters 50% busy on the client and 100% on the proxy.
func rawLine(target, mode string, round, requests, p50, p99, proxyTicks int) string {
	f := []any{target, mode, round, requests, 1000000, p50, p99, 0, 0, proxyTicks, 10, 100,
		0, 0, 0, 0, 50, 100, 100, 100, 32}
	s := make([]string, len(f))
	for i, v := range f {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, "\t")
}

func sample(rows ...string) string {
	return "# cpu: 2 x test\n" + strings.Join(rawColumns, "\t") + "\n" + strings.Join(rows, "\n") + "\n"
}

func TestSummarize(t *testing.T) {
	in := sample(
		rawLine("direct", "sticky", 1, 100000, 100, 1000, 50),
		rawLine("haproxy", "sticky", 1, 40000, 500, 2000, 100),
		rawLine("haproxy", "sticky", 2, 50000, 400, 9000, 100),
		rawLine("haproxy", "sticky", 3, 45000, 450, 3000, 100),
		rawLine("tether", "sticky", 1, 20000, 900, 4000, 100),
		rawLine("tether", "new", 1, 10000, 900, 4000, 100),
	)
	run, err := parseRuns(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(run.notes) != 1 || run.notes[0] != "cpu: 2 x test" {
		t.Errorf("notes %q", run.notes)
	}
	got := summarize(run.rows)
	want := []struct {
		target, mode                string
		rps, p99, xDirect, xHAProxy float64
		proxyUS                     float64
	}{
		{"direct", "sticky", 100000, 1, 1, 100000.0 / 45000, 5},
		{"tether", "sticky", 20000, 4, 0.2, 20000.0 / 45000, 50},
		{"haproxy", "sticky", 45000, 3, 0.45, 1, 1e6 / 45000},
		{"tether", "new", 10000, 4, 0, 0, 100},
	}
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.target != w.target || g.mode != w.mode {
			t.Errorf("result %d is %s/%s, want %s/%s", i, g.target, g.mode, w.target, w.mode)
			continue
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"req/s", g.rps, w.rps}, {"p99", g.p99, w.p99}, {"× direct", g.ratioDirect, w.xDirect},
			{"× HAProxy", g.ratioHAProxy, w.xHAProxy}, {"proxy µs", g.proxyUS, w.proxyUS},
			{"client busy", g.clientBusy, 0.5}, {"proxy busy", g.proxyBusy, 1},
		} {
			if math.Abs(c.got-c.want) > 1e-9*math.Max(1, c.want) {
				t.Errorf("%s/%s %s = %v, want %v", w.target, w.mode, c.name, c.got, c.want)
			}
		}
	}
	md := markdown(run, tables{cases: got,
		mem:      []memRow{{target: "tether", conns: 1000, alive: 1000, rssBefore: 10240, rssAfter: 20480, pssAfter: 20000}},
		sessions: []sessionsRow{{target: "tether", sessions: 1000, tracked: 1000, seconds: 2, rssBefore: 1000, rssAfter: 2000}},
	})
	for _, line := range []string{
		"| sticky, 32 conns | HAProxy | 45,000 | 0.45 | 3.00 | 0.45× | 1.00× | 1.00× | 0 |",
		"| new sessions, 32 conns | **Tether** | 10,000 | 0.90 | 4.00 | – | – | – | 0 |",
		"| **Tether** | 10.0 MiB | 20.0 MiB | 10.2 KiB | 19.5 MiB |",
		"- cpu: 2 x test",
		"Memory with 1,000 distinct sessions sent (500 per second)",
		"| **Tether** | 1,000 | 0 | 1.0 MiB | 2.0 MiB | 1024 B |",
	} {
		if !strings.Contains(md, line) {
			t.Errorf("markdown lacks %q:\n%s", line, md)
		}
	}
	gp := gnuplot(got, "out.png")
	for _, s := range []string{`set output "out.png"`, `"sticky (32 conns)" 20000.000 45000.000`, `"new sessions (32 conns)" 10000.000 ?`} {
		if !strings.Contains(gp, s) {
			t.Errorf("gnuplot script lacks %q:\n%s", s, gp)
		}
	}
	if strings.Contains(gp, "direct") {
		t.Errorf("gnuplot script plots direct:\n%s", gp)
	}
}

func TestParseErrors(t *testing.T) {
	good := rawLine("tether", "sticky", 1, 100, 1, 2, 3)
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"no header", "# cpu: 2 x test\n"},
		{"wrong header", "target\tmode\n" + good + "\n"},
		{"short row", sample("tether\tsticky\t1")},
		{"not a number", sample(strings.Replace(good, "\t100\t", "\tmany\t", 1))},
		{"negative", sample(strings.Replace(good, "\t100\t", "\t-100\t", 1))},
		{"no requests", sample(rawLine("tether", "sticky", 1, 0, 1, 2, 3))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseRuns(strings.NewReader(tc.in)); !errors.Is(err, errFormat) {
				t.Errorf("error %v, want errFormat", err)
			}
		})
	}
	if _, err := parseMem(strings.NewReader("target\tconns\n")); !errors.Is(err, errFormat) {
		t.Errorf("parseMem with a bad header: %v, want errFormat", err)
	}
	bad := strings.Join(sessionsColumns, "\t") + "\ntether\t1\t2\n"
	if _, err := parseSessions(strings.NewReader(bad)); !errors.Is(err, errFormat) {
		t.Errorf("parseSessions with a short row: %v, want errFormat", err)
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct {
		name, got, want string
	}{
		{"thousands small", thousands(999), "999"},
		{"thousands", thousands(1234567.4), "1,234,567"},
		{"ms small", ms(0.456), "0.46"},
		{"ms large", ms(123.45), "123.5"},
		{"ratio", times(0.5), "0.50×"},
		{"no ratio", times(0), "–"},
		{"median odd", strings.TrimSpace(ms(median([]float64{3, 1, 2}))), "2.00"},
		{"median even", strings.TrimSpace(ms(median([]float64{4, 1, 2, 3}))), "2.50"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}
