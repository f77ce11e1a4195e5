// Command tetherprof is `tether serve` with net/http/pprof on a second
// address, for profiling the balancer under load (bench/profile drives it).
// It runs the same code as the tether binary: config.Load, then app.Serve.
//
//	tetherprof --config FILE --pprof 127.0.0.1:6060
//
// GET /debug/runtime on the pprof address answers exact counters from
// runtime/metrics as "name value" lines: heap allocations (objects and
// bytes), GC cycles and the CPU time of GC and of everything, so that a
// script can divide them by the requests served between two readings; and
// the histogram of scheduling latencies (how long runnable goroutines
// waited for a P) as "name@upper-bound count" lines, one per non-empty
// bucket, which two readings turn into the percentiles of a run.
//
// --mutex-rate and --block-rate turn on the mutex and blocking profiles
// (runtime.SetMutexProfileFraction, runtime.SetBlockProfileRate); both are
// off by default because they cost time on the hot path.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"syscall"

	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/internal/app"
)

func main() {
	path := flag.String("config", "", "configuration file (required)")
	addr := flag.String("pprof", "127.0.0.1:6060", "address of the pprof endpoints")
	mutex := flag.Int("mutex-rate", 0, "runtime.SetMutexProfileFraction")
	block := flag.Int("block-rate", 0, "runtime.SetBlockProfileRate, in ns")
	flag.Parse()
	if *path == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	runtime.SetMutexProfileFraction(*mutex)
	runtime.SetBlockProfileRate(*block)
	if err := run(*path, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "tetherprof:", err)
		os.Exit(1)
	}
}

func run(path, addr string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/runtime", runtimeCounters)
	dbg := &http.Server{Handler: mux}
	go func() {
		if err := dbg.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "tetherprof: pprof:", err)
		}
	}()
	defer dbg.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return app.Serve(ctx, cfg, app.ServeOptions{ConfigPath: path, Logger: logger})
}

// counters are the runtime/metrics that /debug/runtime reports.
var counters = []string{
	"/gc/heap/allocs:objects",
	"/gc/heap/allocs:bytes",
	"/gc/cycles/total:gc-cycles",
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/total:cpu-seconds",
	"/cpu/classes/idle:cpu-seconds",
	"/sched/goroutines:goroutines",
	"/memory/classes/heap/objects:bytes",
	"/sched/latencies:seconds", // how long goroutines waited, runnable, for a P
}

func runtimeCounters(w http.ResponseWriter, _ *http.Request) {
	samples := make([]metrics.Sample, len(counters))
	for i, name := range counters {
		samples[i].Name = name
	}
	metrics.Read(samples)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			fmt.Fprintf(w, "%s %d\n", s.Name, s.Value.Uint64())
		case metrics.KindFloat64:
			fmt.Fprintf(w, "%s %g\n", s.Name, s.Value.Float64())
		case metrics.KindFloat64Histogram: // a line per non-empty bucket: "name@upper-bound count"
			h := s.Value.Float64Histogram()
			for i, n := range h.Counts {
				if n > 0 {
					fmt.Fprintf(w, "%s@%g %d\n", s.Name, h.Buckets[i+1], n)
				}
			}
		}
	}
}
