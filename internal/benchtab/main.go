// Command benchtab reads `go test -bench` output (several -count runs)
// on stdin and prints one table: per benchmark and figure, the runs'
// min / median / max, and the issue-17 target where there is one, met
// or not by the median. Ratios to a floor (x-floor, x-critical-path) are
// figures of their own, measured in the same run as their floor.
//
//	go test ./bench -run '^$' -bench . -count 5 | go run ./internal/benchtab
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// target is what a figure should be: at most (or, with atLeast, at least)
// limit.
type target struct {
	pattern *regexp.Regexp // benchmark name, without the -GOMAXPROCS suffix
	metric  string
	limit   float64
	atLeast bool
}

var targets = []target{
	{regexp.MustCompile(`^BenchmarkDockerReady/3c/`), "x-floor", 1.10, false},
	{regexp.MustCompile(`^BenchmarkDockerReady/late/`), "x-floor", 1.05, false},
	{regexp.MustCompile(`^BenchmarkBuild200/`), "x-critical-path", 1.05, false},
	{regexp.MustCompile(`^BenchmarkPass10k/`), "s/op", 2, false},
	{regexp.MustCompile(`^BenchmarkGetInfra/`), "req/s", 20000, true},
	{regexp.MustCompile(`^BenchmarkGetInfra/`), "p99-ms", 2, false},
}

// shown are the figures printed; others (instances, calls/op...) are
// left out to keep the table one screen.
var shown = map[string]bool{"s/op": true, "x-floor": true, "x-critical-path": true, "req/s": true, "p50-ms": true,
	"p99-ms": true, "cpu-s/op": true, "cpu-us/req": true, "goroutines-max": true, "floor-s/op": true, "chain-s": true}

type key struct{ bench, metric string }

var suffix = regexp.MustCompile(`-\d+$`)

// parse collects every figure of every benchmark line; ns/op and
// floor-ns/op become seconds.
func parse(r io.Reader) (order []key, vals map[key][]float64, err error) {
	vals = map[key][]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // a benchmark's name printed alone (-v), or its log
		}
		name := suffix.ReplaceAllString(f[0], "")
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: figure %q is not a number", name, f[i])
			}
			unit := f[i+1]
			switch unit {
			case "ns/op":
				unit, v = "s/op", v/1e9
			case "floor-ns/op":
				unit, v = "floor-s/op", v/1e9
			}
			k := key{name, unit}
			if _, ok := vals[k]; !ok {
				order = append(order, k)
			}
			vals[k] = append(vals[k], v)
		}
	}
	return order, vals, sc.Err()
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// table writes the Markdown table; it returns how many targets the
// medians miss.
func table(w io.Writer, order []key, vals map[key][]float64) int {
	fmt.Fprintln(w, "| benchmark | figure | runs | min | median | max | target | met |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|---|---|")
	missed := 0
	for _, k := range order {
		if !shown[k.metric] {
			continue
		}
		v := vals[k]
		med := median(v)
		tgt, met := "", ""
		for _, t := range targets {
			if t.metric != k.metric || !t.pattern.MatchString(k.bench) {
				continue
			}
			op, ok := "≤", med <= t.limit
			if t.atLeast {
				op, ok = "≥", med >= t.limit
			}
			tgt, met = op+" "+num(t.limit), "yes"
			if !ok {
				met = "**no**"
				missed++
			}
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", strings.TrimPrefix(k.bench, "Benchmark"), k.metric, len(v),
			num(slices.Min(v)), num(med), num(slices.Max(v)), tgt, met)
	}
	return missed
}

func main() {
	order, vals, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtab:", err)
		os.Exit(2)
	}
	if len(order) == 0 {
		fmt.Fprintln(os.Stderr, "benchtab: no benchmark results on stdin")
		os.Exit(2)
	}
	if missed := table(os.Stdout, order, vals); missed > 0 {
		fmt.Printf("\n%d target(s) missed by the median.\n", missed)
	}
}
