// Package procmem reads the memory of a process tree from /proc, for the
// bench tools that report what a proxy costs in memory.
package procmem

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Usage is the memory of a process tree in KiB: resident set size
// (VmRSS), and proportional set size (Pss), which divides the pages that
// processes share between them instead of counting them in each.
type Usage struct {
	RSS, PSS int64
}

// Of sums VmRSS (/proc/PID/status) and Pss (/proc/PID/smaps_rollup) over
// pid and all its descendants (nginx and httpd work in child processes).
func Of(pid int) (Usage, error) {
	var u Usage
	pids, err := tree(pid)
	if err != nil {
		return u, err
	}
	for _, p := range pids {
		rss, err := field(fmt.Sprintf("/proc/%d/status", p), "VmRSS:")
		if err != nil {
			return u, err
		}
		pss, err := field(fmt.Sprintf("/proc/%d/smaps_rollup", p), "Pss:")
		if err != nil {
			return u, err
		}
		u.RSS += rss
		u.PSS += pss
	}
	return u, nil
}

// tree returns pid and all its descendants.
func tree(pid int) ([]int, error) {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		for p, pp := range parent {
			if pp == out[i] {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// field reads a "Name:   123 kB" line of a /proc file.
func field(file, name string) (int64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("%s: no %s line", file, name)
}
