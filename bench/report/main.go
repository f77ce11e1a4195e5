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
	"os"
)

func main() {
	raw := flag.String("raw", "", "measurements written by bench/compare (required)")
	mem := flag.String("mem", "", "idle-connection memory measurements, if any")
	md := flag.String("md", "", "Markdown output (required)")
	gp := flag.String("gnuplot", "", "gnuplot script to write, if any")
	png := flag.String("png", "", "the PNG the gnuplot script draws (required with --gnuplot)")
	flag.Parse()
	if *raw == "" || *md == "" || (*gp != "") != (*png != "") || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*raw, *mem, *md, *gp, *png); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(rawPath, memPath, mdPath, gpPath, pngPath string) error {
	f, err := os.Open(rawPath)
	if err != nil {
		return err
	}
	defer f.Close()
	run, err := parseRuns(f)
	if err != nil {
		return fmt.Errorf("%s: %w", rawPath, err)
	}
	var mem []memRow
	if memPath != "" {
		mf, err := os.Open(memPath)
		if err != nil {
			return err
		}
		defer mf.Close()
		if mem, err = parseMem(mf); err != nil {
			return fmt.Errorf("%s: %w", memPath, err)
		}
	}
	cases := summarize(run.rows)
	if err := os.WriteFile(mdPath, []byte(markdown(run, cases, mem)), 0o644); err != nil {
		return err
	}
	if gpPath != "" {
		return os.WriteFile(gpPath, []byte(gnuplot(cases, pngPath)), 0o644)
	}
	return nil
}
