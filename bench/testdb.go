package bench

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// TestDB is what the test kit's BenchmarkNewDatabase (in the library's
// dbmodule/dbtest) reported: its custom metrics by name, such as
// "database-p50-ms". A metric named WAY-pNN-ms is the NNth percentile of
// one way of getting a database; the targets read the ways "database" (the
// kit's) and "template" (a bare CREATE DATABASE … TEMPLATE). Whatever else
// the benchmark reports is listed as it comes.
type TestDB map[string]float64

// MeasureTestDatabase runs BenchmarkNewDatabase once in the library module
// at root and returns its metrics; those of a sub-benchmark are prefixed
// with its name and a slash.
func MeasureTestDatabase(ctx context.Context, root string) (TestDB, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "NewDatabase", "-benchtime", "1x", "./dbmodule/dbtest/")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test -bench NewDatabase: %w\n%s", err, out)
	}
	metrics := parseBenchMetrics(string(out))
	if len(metrics) == 0 {
		return nil, fmt.Errorf("no metrics in:\n%s", out)
	}
	return metrics, nil
}

// benchLine is a result line of go test -bench: the name, iterations, then
// value-unit pairs.
var benchLine = regexp.MustCompile(`^Benchmark\S*?(?:/(\S+?))?(?:-\d+)?\s+\d+\s+(.*)$`)

// parseBenchMetrics reads the custom metrics of go test -bench output,
// leaving out the standard ns/op, B/op and allocs/op.
func parseBenchMetrics(out string) TestDB {
	metrics := TestDB{}
	for _, line := range strings.Split(out, "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		prefix := ""
		if m[1] != "" {
			prefix = m[1] + "/"
		}
		fields := strings.Fields(m[2])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil || slices.Contains([]string{"ns/op", "B/op", "allocs/op"}, fields[i+1]) {
				continue
			}
			metrics[prefix+fields[i+1]] = v
		}
	}
	return metrics
}

// percentileMetric splits WAY-pNN-ms.
var percentileMetric = regexp.MustCompile(`^(.+)-p(\d+)-ms$`)

// ways returns the ways of getting a database the metrics time, the known
// ones first, and the percentiles measured, in order; and the metrics that
// are not percentiles.
func (m TestDB) ways() (ways []string, percentiles []int, other []string) {
	for _, name := range sortedKeys(m) {
		pm := percentileMetric.FindStringSubmatch(name)
		if pm == nil {
			other = append(other, name)
			continue
		}
		if !slices.Contains(ways, pm[1]) {
			ways = append(ways, pm[1])
		}
		if p, _ := strconv.Atoi(pm[2]); !slices.Contains(percentiles, p) {
			percentiles = append(percentiles, p)
		}
	}
	known := []string{"database", "template", "migrate"}
	slices.SortStableFunc(ways, func(a, b string) int {
		ia, ib := slices.Index(known, a), slices.Index(known, b)
		if ia < 0 {
			ia = len(known)
		}
		if ib < 0 {
			ib = len(known)
		}
		return ia - ib
	})
	slices.Sort(percentiles)
	return ways, percentiles, other
}

// targets are issue 14's: a test's database in a median of 10 ms or less,
// a p95 of 25 ms or less, and at least twice as fast as a bare CREATE
// DATABASE … TEMPLATE in the same run.
func (m TestDB) targets() []Target {
	if len(m) == 0 {
		return nil
	}
	p50, ok50 := m["database-p50-ms"]
	p95, ok95 := m["database-p95-ms"]
	tpl, okTpl := m["template-p50-ms"]
	speedup := 0.0
	if p50 > 0 {
		speedup = tpl / p50
	}
	return []Target{
		{Goal: "a test's database (`Server.Database`): median ≤ 10 ms", Known: ok50, Met: p50 <= 10, Measured: fmt.Sprintf("%.1f ms", p50)},
		{Goal: "a test's database: p95 ≤ 25 ms", Known: ok95, Met: p95 <= 25, Measured: fmt.Sprintf("%.1f ms", p95)},
		{Goal: "a test's database ≥ 2× faster than a bare `CREATE DATABASE … TEMPLATE`", Known: ok50 && okTpl, Met: speedup >= 2,
			Measured: fmt.Sprintf("%.2f× (median %.1f ms against %.1f ms for the bare clone)", speedup, p50, tpl)},
	}
}

// wayTitle describes the ways the benchmark has reported so far.
func wayTitle(way string) string {
	if t, ok := map[string]string{
		"database": "`Server.Database` (the test kit's way, connections included)",
		"template": "bare `CREATE DATABASE … TEMPLATE`",
		"migrate":  "`CREATE DATABASE` + every migration",
	}[way]; ok {
		return t
	}
	return "`" + way + "`"
}

// markdown is the report's section on the test kit.
func (m TestDB) markdown(b *strings.Builder) {
	if len(m) == 0 {
		return
	}
	ways, percentiles, other := m.ways()
	b.WriteString("\n## A database per test\n\n`BenchmarkNewDatabase` in the library's dbmodule/dbtest, run once " +
		"(`go test -run '^$' -bench NewDatabase -benchtime 1x ./dbmodule/dbtest/`); its own doc says how it rounds and orders the ways.\n")
	if len(ways) > 0 {
		b.WriteString("\n| way |")
		for _, p := range percentiles {
			fmt.Fprintf(b, " %s |", percentileTitle(p))
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(percentiles)) + "\n")
		for _, w := range ways {
			fmt.Fprintf(b, "| %s |", wayTitle(w))
			for _, p := range percentiles {
				if v, ok := m[fmt.Sprintf("%s-p%d-ms", w, p)]; ok {
					fmt.Fprintf(b, " %.1f ms |", v)
				} else {
					b.WriteString(" — |")
				}
			}
			b.WriteString("\n")
		}
	}
	if len(other) > 0 {
		b.WriteString("\nIts other metrics:\n\n| metric | value |\n|---|---|\n")
		for _, name := range other {
			fmt.Fprintf(b, "| %s | %g |\n", name, m[name])
		}
	}
}

func percentileTitle(p int) string {
	if p == 50 {
		return "median"
	}
	return fmt.Sprintf("p%d", p)
}
