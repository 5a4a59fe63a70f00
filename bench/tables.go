package bench

import (
	"fmt"
	"slices"
	"strings"
)

// A column is one contender's figures in the tables and the chart: at each
// concurrency, the contender whose samples it shows.
type column struct {
	title string
	at    func(conc int) string
	// abovePool: the table shows it only above PoolSize goroutines; below,
	// it is the run of the column before it.
	abovePool bool
}

// columns are the contenders the samples hold: the Go ones, then pgbench
// with the Go pools' number of server connections, then pgbench with one
// per goroutine, which above PoolSize measures pooling.
func columns(samples []Sample) []column {
	var out []column
	has := func(c string) bool {
		return slices.ContainsFunc(samples, func(s Sample) bool { return s.Contender == c })
	}
	for _, c := range Contenders() {
		if !isPgbench(c) && has(c) {
			out = append(out, column{title: c, at: func(int) string { return c }})
		}
	}
	if has(PgBench) || has(PgBenchPool) {
		out = append(out, column{title: fmt.Sprintf("pgbench, ≤ %d connections", PoolSize), at: SameConns})
	}
	if has(PgBench) {
		out = append(out, column{title: "pgbench, a connection per goroutine (pooling)", at: func(int) string { return PgBench }, abovePool: true})
	}
	return out
}

func (r Report) tablesMarkdown(b *strings.Builder) {
	summaries := Summarise(r.Samples)
	cols := columns(r.Samples)
	for _, t := range r.Plan.Transports {
		for _, wl := range r.Plan.Workloads {
			fmt.Fprintf(b, "\n## %s, %s\n\nThroughput, %s per second.%s\n\n| goroutines |", wl.Title, transportTitle(t), wl.Units, r.pgbenchColumnsText())
			for _, c := range cols {
				fmt.Fprintf(b, " %s |", c.title)
			}
			b.WriteString(" module ÷ pgxpool | module ÷ pgbench, same connections | module ÷ pgbench, a connection per goroutine (pooling) |\n|---|" +
				strings.Repeat("---|", len(cols)+3) + "\n")
			for _, conc := range r.Plan.Concurrency {
				p := Point{t, wl.Name, conc}
				fmt.Fprintf(b, "| %d |", conc)
				for _, c := range cols {
					fmt.Fprintf(b, " %s |", columnCell(summaries[p], c, conc, throughputText))
				}
				raw, _ := Compare(r.Samples, p, Module, RawPgx)
				same, _ := Compare(r.Samples, p, Module, SameConns(conc))
				pooling := "(the same)"
				if conc > PoolSize {
					ratio, _ := Compare(r.Samples, p, Module, PgBench)
					pooling = ratioText(ratio)
				}
				fmt.Fprintf(b, " %s | %s | %s |\n", ratioText(raw), ratioText(same), pooling)
			}
			fmt.Fprintf(b, "\nLatency p50 / p99 / mean (pgbench: its mean only), and the client's CPU time per %s:\n\n| goroutines |", wl.Unit)
			for _, c := range cols {
				fmt.Fprintf(b, " %s |", c.title)
			}
			b.WriteString("\n|---|" + strings.Repeat("---|", len(cols)) + "\n")
			for _, conc := range r.Plan.Concurrency {
				fmt.Fprintf(b, "| %d |", conc)
				for _, c := range cols {
					fmt.Fprintf(b, " %s |", columnCell(summaries[Point{t, wl.Name, conc}], c, conc, latencyText))
				}
				b.WriteString("\n")
			}
		}
	}
}

// columnCell is c's figure at conc, as f writes a summary.
func columnCell(summaries map[string]Summary, c column, conc int, f func(Summary) string) string {
	if c.abovePool && conc <= PoolSize {
		return "(the run to the left)"
	}
	return f(summaries[c.at(conc)])
}

func latencyText(s Summary) string {
	if s.Runs == 0 {
		return "—"
	}
	lat := us(s.P50) + " / " + us(s.P99) + " / " + us(s.Mean)
	if s.P50 == 0 {
		lat = "mean " + us(s.Mean)
	}
	return lat + "; cpu " + us(s.CPUPerOp)
}

func (r Report) pairsMarkdown(b *strings.Builder) {
	if len(r.Pairs) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## Paired comparisons\n\nThe targets rest on these: at each point, back-to-back pairs of %s runs "+
		"(with pgbench: whole seconds, at least %s), the order alternating; the ratio is the median of the pairs' ratios, with their range and "+
		"its 95 %% interval. Throughput and client CPU per operation are each one's medians. Against pgbench the points stay at "+
		"or below %d goroutines, where pgbench has as many server connections as the module's pool. Through PgBouncer the module "+
		"runs with `DB_QUERY_EXEC_MODE=exec` and pgbench with `-M extended` (unnamed statements both), against %d server connections "+
		"either way: pgbench's clients queue in PgBouncer, the module's goroutines in its pool.\n", r.PairDuration, PgbenchMinRun, PoolSize, PoolSize)
	for _, p := range Pairings() {
		samples := r.pairSamples(p.Name)
		if len(samples) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n### %s\n\n| transport | workload | goroutines | pairs | ratio | 95 %% range | %s | %s | CPU per op, %s / %s |\n"+
			"|---|---|---|---|---|---|---|---|---|\n", p.Name, p.A, p.B, p.A, p.B)
		ps := Summarise(samples)
		for _, pt := range Points(samples) {
			ratio, _ := Compare(samples, pt, p.A, p.B)
			a, bb := ps[pt][p.A], ps[pt][p.B]
			transport := transportTitle(pt.Transport)
			if p.Bouncer {
				transport = "PgBouncer, TCP"
			}
			fmt.Fprintf(b, "| %s | %s | %d | %d | %s | %s | %s | %s | %s / %s |\n", transport, pt.Workload, pt.Concurrency, ratio.Rounds,
				ratioText(ratio), rangeText(ratio), throughputText(a), throughputText(bb), us(a.CPUPerOp), us(bb.CPUPerOp))
		}
	}
}

// pgbenchColumnsText explains pgbench's two columns, if the plan goes above
// PoolSize goroutines.
func (r Report) pgbenchColumnsText() string {
	var above []int
	for _, c := range r.Plan.Concurrency {
		if c > PoolSize {
			above = append(above, c)
		}
	}
	if len(above) == 0 {
		return ""
	}
	return fmt.Sprintf(" pgbench's two columns are one run up to %d goroutines; above, the first has as many server connections as the "+
		"Go pools and compares like with like, the second one per goroutine and measures pooling (%d server connections against %s on "+
		"the same server CPU), not the client:", PoolSize, PoolSize, intsText(above, " or "))
}
