package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ds)
	if s.n != 100 || s.p50 != 51*time.Millisecond || s.p99 != 100*time.Millisecond || s.max != 100*time.Millisecond {
		t.Fatalf("%+v", s)
	}
	if ds[0] != 100*time.Millisecond {
		t.Fatal("summarize sorted its input")
	}
	if (summarize(nil) != summary{}) {
		t.Fatal("empty input")
	}
}

// TestRunSmall runs the whole scenario briefly over real processes: every
// figure is measured, and the report holds them.
func TestRunSmall(t *testing.T) {
	o := options{tether: proctest.Binary(t), modes: []string{"sync", "majority"}, samples: 20,
		duration: 300 * time.Millisecond, concurrency: 3, nodes: 3}
	res, err := run(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.write.n < 15 || r.write.p50 <= 0 || r.read.n != 20 || r.read.p50 <= 0 || r.visible.n != 20 || r.visible.p50 <= 0 ||
			r.resolution.p50 <= 0 || r.throughput <= 0 || r.loaded.n == 0 || r.errors != 0 {
			t.Fatalf("%s: %+v", r.mode, r)
		}
	}
	out := report(o, machineState(), res)
	if !strings.Contains(out, "| sync |") || !strings.Contains(out, "REPLICATION mode=majority") {
		t.Fatalf("report:\n%s", out)
	}
}
