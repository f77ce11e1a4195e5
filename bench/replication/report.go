package main

import (
	"cmp"
	"fmt"
	"strings"
	"time"
)

// report formats the results as a Markdown table, the machine's state, and
// one key=value line per mode.
func report(o options, m machine, res []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Replication end to end: %d `tether cart --cluster` nodes on loopback (--lease %s), HTTP API, %d samples, %v throughput runs with %d clients\n\n",
		o.nodes, cmp.Or(o.lease, "default"), o.samples, o.duration, o.concurrency)
	b.WriteString("| mode | write p50 | write p99 | read p50 | read p99 | visible on a peer p50 | p99 | writes/s | under load p50 | p99 | failed |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range res {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s–%s | %s–%s | %.0f | %s | %s | %d |\n", r.mode,
			ms(r.write.p50), ms(r.write.p99), ms(r.read.p50), ms(r.read.p99), ms(r.visibleLow.p50), ms(r.visible.p50), ms(r.visibleLow.p99), ms(r.visible.p99),
			r.throughput, ms(r.loaded.p50), ms(r.loaded.p99), r.errors)
	}
	fmt.Fprintf(&b, "\nTimes in milliseconds; visibility between a lower and an upper bound (polls %s ms apart at the median). Machine: %d × %s, %s; load average %s before, %s after; %s, %v.\n\n",
		resolution(res), m.cpus, m.model, m.goVersion, m.loadBefore, m.loadAfter, m.start.UTC().Format(time.RFC3339), m.stop.Sub(m.start).Round(time.Second))
	for _, r := range res {
		fmt.Fprintf(&b, "REPLICATION mode=%s write_p50_ms=%s write_p99_ms=%s write_max_ms=%s read_p50_ms=%s read_p99_ms=%s visible_low_p50_ms=%s visible_p50_ms=%s visible_low_p99_ms=%s visible_p99_ms=%s resolution_p50_ms=%s writes_per_s=%.0f loaded_p50_ms=%s loaded_p99_ms=%s failed=%d samples=%d\n",
			r.mode, ms(r.write.p50), ms(r.write.p99), ms(r.write.max), ms(r.read.p50), ms(r.read.p99), ms(r.visibleLow.p50), ms(r.visible.p50),
			ms(r.visibleLow.p99), ms(r.visible.p99), ms(r.resolution.p50),
			r.throughput, ms(r.loaded.p50), ms(r.loaded.p99), r.errors, r.write.n)
	}
	return b.String()
}

// ms formats d in milliseconds with three significant decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond))
}

// resolution is the median span of the polls around a change, per mode.
func resolution(res []result) string {
	var parts []string
	for _, r := range res {
		parts = append(parts, ms(r.resolution.p50))
	}
	return strings.Join(parts, ", ")
}
