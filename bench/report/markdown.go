package main

import (
	"fmt"
	"strconv"
	"strings"
)

var targetNames = map[string]string{
	"direct": "direct (wrk → one backend)", "tether": "**Tether**", "haproxy": "HAProxy",
	"nginx": "nginx", "httpd": "Apache httpd",
	"direct-nethttp": "direct, net/http.Server backend", "proto-nethttp": "Go net/http proxy (bare)",
	"proto-raw": "Go raw HTTP/1.1 proxy (prototype)", "tether-nethttp": "Tether, engine: nethttp",
	"tether-maxconns": "Tether, max_conns: 64",
	"tether-insert":   "Tether, sticky.mode: insert", "haproxy-insert": "HAProxy, cookie SERVERID insert",
}

// targetName is how tables name target t; "NAME/tls" is NAME's TLS
// listener (memory rows).
func targetName(t string) string {
	if base, ok := strings.CutSuffix(t, "/tls"); ok {
		return targetName(base) + ", TLS"
	}
	if n, ok := targetNames[t]; ok {
		return n
	}
	return t
}

func modeName(r result) string {
	c := thousands(float64(r.conns))
	switch r.mode {
	case "sticky":
		return "sticky, " + c + " conns"
	case "new":
		return "new sessions, " + c + " conns"
	case "big":
		return "64 KiB sticky, " + c + " conns"
	case "c1000":
		return "sticky, " + c + " conns"
	case "burst":
		return "bursts of " + c + " new conns, a request each"
	case "tls":
		return "TLS keep-alive, sticky, " + c + " conns"
	case "tls-handshake":
		return "TLS handshake per request, " + c + " conns"
	}
	return r.mode + ", " + c + " conns"
}

// markdown renders the throughput, CPU and memory tables.
func markdown(run runInfo, t tables) string {
	cases, mem := t.cases, t.mem
	var b strings.Builder
	b.WriteString("Run:\n\n")
	for _, n := range run.notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(cases) > 0 {
		throughput(&b, cases)
	}
	if len(mem) > 0 {
		fmt.Fprintf(&b, "\nMemory with %s idle keep-alive client connections (each after one request; "+
			"whole process tree):\n\n", thousands(float64(mem[0].conns)))
		b.WriteString("| target | RSS before | RSS after | RSS per connection | PSS after | PSS per connection | still open after |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
		for _, m := range mem {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", targetName(m.target),
				mib(m.rssBefore), mib(m.rssAfter), perConn(m.rssAfter-m.rssBefore, m.conns),
				mib(m.pssAfter), perConn(m.pssAfter-m.pssBefore, m.conns),
				thousands(float64(m.alive))+" / "+thousands(float64(m.conns)))
		}
	}
	for _, r := range t.sessions {
		fmt.Fprintf(&b, "\nMemory with %s distinct sessions sent (%s per second):\n\n", thousands(float64(r.sessions)),
			thousands(float64(r.sessions)/r.seconds))
		b.WriteString("| target | tracked by the balancer | not tracked (over the limit) | RSS before | RSS after | RSS per tracked session |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|\n")
		per := "–"
		if r.tracked > 0 {
			per = strconv.FormatFloat((r.rssAfter-r.rssBefore)*1024/float64(r.tracked), 'f', 0, 64) + " B"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", targetName(r.target), thousands(float64(r.tracked)),
			thousands(float64(r.untracked)), mib(r.rssBefore), mib(r.rssAfter), per)
	}
	return b.String()
}

// throughput renders the throughput and CPU tables.
func throughput(b *strings.Builder, cases []result) {
	rounds := 0
	for _, c := range cases {
		rounds = max(rounds, c.rounds)
	}
	fmt.Fprintf(b, "\nThroughput and latency (median of %d round(s); ratios between medians):\n\n", rounds)
	b.WriteString("| mode | target | req/s | p50 ms | p99 ms | × direct | × HAProxy | p99 ÷ HAProxy's | errors |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, c := range cases {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", modeName(c), targetName(c.target),
			thousands(c.rps), ms(c.p50), ms(c.p99), times(c.ratioDirect), times(c.ratioHAProxy),
			times(c.p99VersusHAProxy), errorsOf(c))
	}
	b.WriteString("\nCPU (medians; CPU time of the process tree from /proc/PID/stat over the measurement, " +
		"core busy share from /proc/stat):\n\n")
	b.WriteString("| mode | target | proxy CPU µs/req | backends CPU µs/req | client core busy | proxy core busy |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|\n")
	for _, c := range cases {
		fmt.Fprintf(b, "| %s | %s | %.1f | %.1f | %.0f%% | %.0f%% |\n", modeName(c), targetName(c.target),
			c.proxyUS, c.backendUS, 100*c.clientBusy, 100*c.proxyBusy)
	}
}

func errorsOf(c result) string {
	if c.non2xx == 0 && c.errs == 0 {
		return "0"
	}
	return fmt.Sprintf("%d non-2xx, %d socket", c.non2xx, c.errs)
}

func ms(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func times(v float64) string {
	if v == 0 {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "×"
}

func mib(kib float64) string { return strconv.FormatFloat(kib/1024, 'f', 1, 64) + " MiB" }

func perConn(kib float64, n int) string {
	if n == 0 {
		return "–"
	}
	return strconv.FormatFloat(kib/float64(n), 'f', 1, 64) + " KiB"
}

// thousands formats v rounded to an integer with comma separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
