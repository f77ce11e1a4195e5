// Command report turns the raw measurements of bench/compare into the
// Markdown tables of docs/benchmarks.md and a gnuplot script for the chart.
//
//	report --raw compare.tsv [--mem compare.mem.tsv] --md out.md [--gnuplot chart.gp --png chart.png]
//
// Every case is summarized by the median of its rounds (each figure on its
// own: the median req/s, the median p99); ratios are taken between those
// medians, to "direct" (wrk straight at one backend) and to HAProxy.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	raw := flag.String("raw", "", "measurements written by bench/compare (required)")
	mem := flag.String("mem", "", "idle-connection memory measurements, if any")
	sess := flag.String("sessions", "", "tracked-sessions memory measurements, if any")
	md := flag.String("md", "", "Markdown output (required)")
	gp := flag.String("gnuplot", "", "gnuplot script to write, if any")
	png := flag.String("png", "", "the PNG the gnuplot script draws (required with --gnuplot)")
	flag.Parse()
	if *raw == "" || *md == "" || (*gp != "") != (*png != "") || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(files{raw: *raw, mem: *mem, sessions: *sess, md: *md, gnuplot: *gp, png: *png}); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// files are run's inputs and outputs; empty optional ones are skipped.
type files struct{ raw, mem, sessions, md, gnuplot, png string }

func run(fs files) error {
	f, err := os.Open(fs.raw)
	if err != nil {
		return err
	}
	defer f.Close()
	run, err := parseRuns(f)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.raw, err)
	}
	var t tables
	if fs.mem != "" {
		if t.mem, err = parseFile(fs.mem, parseMem); err != nil {
			return err
		}
	}
	if fs.sessions != "" {
		if t.sessions, err = parseFile(fs.sessions, parseSessions); err != nil {
			return err
		}
	}
	t.cases = summarize(run.rows)
	if err := os.WriteFile(fs.md, []byte(markdown(run, t)), 0o644); err != nil {
		return err
	}
	if fs.gnuplot != "" {
		return os.WriteFile(fs.gnuplot, []byte(gnuplot(t.cases, fs.png)), 0o644)
	}
	return nil
}

// tables are what the Markdown shows.
type tables struct {
	cases    []result
	mem      []memRow
	sessions []sessionsRow
}

func parseFile[T any](path string, parse func(io.Reader) ([]T, error)) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}
