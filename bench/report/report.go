package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// row is one measurement: one target, one mode, one round.
type row struct {
	target, mode string
	round        int
	requests     float64
	seconds      float64
	p50, p99     float64 // ms
	non2xx, errs int
	proxyUS      float64 // CPU µs of the proxy per request
	backendUS    float64 // CPU µs of the three backends per request
	clientBusy   float64 // share of the client core busy, 0..1
	proxyBusy    float64 // share of the proxy core busy, 0..1
	conns        int
}

// runInfo is a whole measurement file: the "# key: value" lines that
// describe the machine and the rows.
type runInfo struct {
	notes []string
	rows  []row
}

var rawColumns = []string{"target", "mode", "round", "requests", "duration_us", "p50_us", "p99_us", "non2xx",
	"socket_errors", "proxy_ticks", "backend_ticks", "hz", "client_busy0", "client_total0", "proxy_busy0",
	"proxy_total0", "client_busy1", "client_total1", "proxy_busy1", "proxy_total1", "conns"}

var errFormat = errors.New("bad format")

// parseRuns reads what bench/compare writes: comment lines, a header
// naming rawColumns, and one tab-separated row per measurement (none when
// the run measured memory only).
func parseRuns(r io.Reader) (runInfo, error) {
	var out runInfo
	sc := bufio.NewScanner(r)
	header := false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# "):
			out.notes = append(out.notes, strings.TrimPrefix(line, "# "))
			continue
		case line == "":
			continue
		case !header:
			if line != strings.Join(rawColumns, "\t") {
				return out, fmt.Errorf("line %d: %w: header is not %v", n, errFormat, rawColumns)
			}
			header = true
			continue
		}
		rw, err := parseRow(strings.Split(line, "\t"))
		if err != nil {
			return out, fmt.Errorf("line %d: %w", n, err)
		}
		out.rows = append(out.rows, rw)
	}
	if err := sc.Err(); err != nil {
		return out, err
	}
	if !header {
		return out, fmt.Errorf("%w: no header", errFormat)
	}
	return out, nil
}

func parseRow(f []string) (row, error) {
	if len(f) != len(rawColumns) {
		return row{}, fmt.Errorf("%w: %d fields, want %d", errFormat, len(f), len(rawColumns))
	}
	v := make([]float64, len(f))
	for i := 2; i < len(f); i++ {
		x, err := strconv.ParseFloat(f[i], 64)
		if err != nil || x < 0 {
			return row{}, fmt.Errorf("%w: %s is %q", errFormat, rawColumns[i], f[i])
		}
		v[i] = x
	}
	if v[4] <= 0 || v[3] <= 0 || v[11] <= 0 {
		return row{}, fmt.Errorf("%w: no requests, no duration or no clock rate", errFormat)
	}
	ticksUS := 1e6 / v[11]
	return row{
		target: f[0], mode: f[1], round: int(v[2]),
		requests: v[3], seconds: v[4] / 1e6, p50: v[5] / 1000, p99: v[6] / 1000,
		non2xx: int(v[7]), errs: int(v[8]),
		proxyUS:    v[9] * ticksUS / v[3],
		backendUS:  v[10] * ticksUS / v[3],
		clientBusy: share(v[16]-v[12], v[17]-v[13]),
		proxyBusy:  share(v[18]-v[14], v[19]-v[15]),
		conns:      int(v[20]),
	}, nil
}

func share(busy, total float64) float64 {
	if total <= 0 {
		return 0
	}
	return busy / total
}

// result is the summary of one case over its rounds.
type result struct {
	target, mode     string
	rounds           int
	rps, p50, p99    float64 // medians
	non2xx, errs     int     // totals
	proxyUS          float64 // medians
	backendUS        float64
	clientBusy       float64
	proxyBusy        float64
	conns            int
	ratioDirect      float64 // rps / direct's rps in the same mode; 0 if unknown
	ratioHAProxy     float64
	p99VersusHAProxy float64 // p99 / HAProxy's p99; 0 if unknown
}

// Order of targets and modes in tables and charts.
var (
	targetOrder = []string{"direct", "tether", "haproxy", "nginx", "httpd", "tether-nethttp", "tether-maxconns", "tether-insert", "haproxy-insert", "direct-nethttp", "proto-nethttp", "proto-raw"}
	modeOrder   = []string{"sticky", "new", "big", "c1000", "burst", "tls", "tls-handshake"}
)

func rank(order []string, s string) int {
	if i := slices.Index(order, s); i >= 0 {
		return i
	}
	return len(order)
}

// summarize groups rows by mode and target, takes medians and ratios.
func summarize(rows []row) []result {
	groups := map[[2]string][]row{}
	for _, r := range rows {
		k := [2]string{r.mode, r.target}
		groups[k] = append(groups[k], r)
	}
	var out []result
	for k, g := range groups {
		res := result{mode: k[0], target: k[1], rounds: len(g), conns: g[0].conns}
		med := func(f func(row) float64) float64 {
			v := make([]float64, len(g))
			for i, r := range g {
				v[i] = f(r)
			}
			return median(v)
		}
		res.rps = med(func(r row) float64 { return r.requests / r.seconds })
		res.p50 = med(func(r row) float64 { return r.p50 })
		res.p99 = med(func(r row) float64 { return r.p99 })
		res.proxyUS = med(func(r row) float64 { return r.proxyUS })
		res.backendUS = med(func(r row) float64 { return r.backendUS })
		res.clientBusy = med(func(r row) float64 { return r.clientBusy })
		res.proxyBusy = med(func(r row) float64 { return r.proxyBusy })
		for _, r := range g {
			res.non2xx += r.non2xx
			res.errs += r.errs
		}
		out = append(out, res)
	}
	slices.SortFunc(out, func(a, b result) int {
		if c := rank(modeOrder, a.mode) - rank(modeOrder, b.mode); c != 0 {
			return c
		}
		if c := rank(targetOrder, a.target) - rank(targetOrder, b.target); c != 0 {
			return c
		}
		return strings.Compare(a.target, b.target)
	})
	for i := range out {
		for _, ref := range out {
			if ref.mode != out[i].mode {
				continue
			}
			switch ref.target {
			case "direct":
				out[i].ratioDirect = ratio(out[i].rps, ref.rps)
			case "haproxy":
				out[i].ratioHAProxy = ratio(out[i].rps, ref.rps)
				out[i].p99VersusHAProxy = ratio(out[i].p99, ref.p99)
			}
		}
	}
	return out
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// median of v; v is reordered.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// memRow is one target's idle-connection memory measurement.
type memRow struct {
	target              string
	conns, alive        int
	openSeconds         float64
	rssBefore, rssAfter float64 // KiB
	pssBefore, pssAfter float64 // KiB
}

var memColumns = []string{"target", "conns", "alive", "open_seconds", "rss_before_kib", "rss_after_kib", "pss_before_kib", "pss_after_kib"}

func parseMem(r io.Reader) ([]memRow, error) {
	names, rows, err := readTable(r, memColumns)
	var out []memRow
	for i, v := range rows {
		out = append(out, memRow{target: names[i], conns: int(v[1]), alive: int(v[2]), openSeconds: v[3],
			rssBefore: v[4], rssAfter: v[5], pssBefore: v[6], pssAfter: v[7]})
	}
	return out, err
}

// sessionsRow is Tether's memory before and after tracking many sessions.
type sessionsRow struct {
	target              string
	sessions, tracked   int64
	untracked           int64
	seconds             float64
	rssBefore, rssAfter float64 // KiB
}

var sessionsColumns = []string{"target", "sessions", "tracked", "untracked", "seconds", "rss_before_kib", "rss_after_kib", "pss_before_kib", "pss_after_kib"}

func parseSessions(r io.Reader) ([]sessionsRow, error) {
	names, rows, err := readTable(r, sessionsColumns)
	var out []sessionsRow
	for i, v := range rows {
		out = append(out, sessionsRow{target: names[i], sessions: int64(v[1]), tracked: int64(v[2]),
			untracked: int64(v[3]), seconds: v[4], rssBefore: v[5], rssAfter: v[6]})
	}
	return out, err
}

// readTable reads a tab-separated table whose header is columns: the
// first column as text, the others as non-negative numbers (v[0] unused).
func readTable(r io.Reader, columns []string) (names []string, rows [][]float64, err error) {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Split(sc.Text(), "\t")
		if n == 1 {
			if sc.Text() != strings.Join(columns, "\t") {
				return nil, nil, fmt.Errorf("line 1: %w: header is not %v", errFormat, columns)
			}
			continue
		}
		if len(f) != len(columns) {
			return nil, nil, fmt.Errorf("line %d: %w: %d fields, want %d", n, errFormat, len(f), len(columns))
		}
		v := make([]float64, len(f))
		for i := 1; i < len(f); i++ {
			x, err := strconv.ParseFloat(f[i], 64)
			if err != nil || x < 0 {
				return nil, nil, fmt.Errorf("line %d: %w: %s is %q", n, errFormat, columns[i], f[i])
			}
			v[i] = x
		}
		names = append(names, f[0])
		rows = append(rows, v)
	}
	return names, rows, sc.Err()
}
