package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// gnuplot returns a script drawing req/s and p99 per mode, one bar per
// proxy, into png. "direct" is left out: it is several times faster than
// any proxy and would flatten the bars; the tables have it.
func gnuplot(cases []result, png string) string {
	var modes, targets []string
	at := map[[2]string]result{}
	for _, c := range cases {
		if strings.HasPrefix(c.target, "direct") {
			continue
		}
		if !slices.Contains(modes, c.mode) {
			modes = append(modes, c.mode)
		}
		if !slices.Contains(targets, c.target) {
			targets = append(targets, c.target)
		}
		at[[2]string{c.mode, c.target}] = c
	}
	slices.SortStableFunc(targets, func(a, b string) int { return rank(targetOrder, a) - rank(targetOrder, b) })
	block := func(name string, f func(result) float64) string {
		var b strings.Builder
		fmt.Fprintf(&b, "$%s << EOD\nmode", name)
		for _, t := range targets {
			fmt.Fprintf(&b, " %q", strings.Trim(targetName(t), "*"))
		}
		b.WriteString("\n")
		for _, m := range modes {
			label := m
			for _, t := range targets {
				if c, ok := at[[2]string{m, t}]; ok {
					label = shortModeName(c)
					break
				}
			}
			fmt.Fprintf(&b, "%q", label)
			for _, t := range targets {
				c, ok := at[[2]string{m, t}]
				if !ok {
					b.WriteString(" ?")
					continue
				}
				b.WriteString(" " + strconv.FormatFloat(f(c), 'f', 3, 64))
			}
			b.WriteString("\n")
		}
		b.WriteString("EOD\n")
		return b.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "set terminal pngcairo size 1100,850 font 'sans,10'\nset output %q\n", png)
	b.WriteString(block("rps", func(c result) float64 { return c.rps }))
	b.WriteString(block("p99", func(c result) float64 { return c.p99 }))
	n := len(targets) + 1
	fmt.Fprintf(&b, `set datafile missing "?"
set multiplot layout 2,1 title "Tether vs HAProxy, nginx, Apache httpd (bench/compare; median of rounds; proxy on one core)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left horizontal
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set ylabel "requests per second"
plot for [i=2:%d] $rps using i:xtic(1) title columnheader(i)
set logscale y
set yrange [*:*]
set offsets 0, 0, 0, 0
set ylabel "p99 latency, ms (log scale)"
plot for [i=2:%d] $p99 using i:xtic(1) title columnheader(i)
unset multiplot
`, n, n)
	return b.String()
}

// shortModeName labels a group of bars: "sticky (32)", "64 KiB (32)".
func shortModeName(r result) string {
	name := map[string]string{"sticky": "sticky", "new": "new sessions", "big": "64 KiB", "c1000": "sticky", "burst": "bursts"}[r.mode]
	if name == "" {
		name = r.mode
	}
	return name + " (" + strconv.Itoa(r.conns) + " conns)"
}
