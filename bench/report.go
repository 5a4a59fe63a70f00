package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// A Report is everything one run measured.
type Report struct {
	Machine      string // what it ran on
	Command      string // how to run it again
	Plan         Plan
	Samples      []Sample
	Pairs        []Sample           // RunPairs', over Pairings; nil if not measured
	PairDuration time.Duration      // of each paired run
	Allocs       map[string]float64 // "module QueryRow" and the like: allocations per operation
	Cycle        *Cycle
	RSS          *IdleRSS
	TestDB       map[string]float64 // MeasureTestDatabase's
	Chart        string             // the chart's file name, beside the report
}

// A Target is one of the goals, with what was measured against it.
type Target struct {
	Goal, Measured string
	Met            bool
	Known          bool // false when the run did not measure it
}

// Targets checks the report against the goals the module is held to.
func (r Report) Targets() []Target {
	var out []Target
	// The module's handle against raw pgxpool, at every point measured.
	pairing := "module ÷ pgxpool"
	worst, where, n := 0.0, Point{}, 0
	for _, p := range Points(r.pairSamples(pairing)) {
		if ratio, ok := r.compare(pairing, p, Module, RawPgx); ok {
			n++
			if n == 1 || ratio.Median < worst {
				worst, where = ratio.Median, p
			}
		}
	}
	out = append(out, Target{Goal: "module ≥ 0.98× raw pgxpool throughput at every concurrency", Known: n > 0, Met: worst >= 0.98,
		Measured: fmt.Sprintf("lowest median ratio %.3f× (%s, %s, %s) over %d points", worst, transportTitle(where.Transport), where.Workload, goroutines(where.Concurrency), n)})

	for _, q := range []string{"QueryRow", "Exec"} {
		m, raw := r.Allocs[Module+" "+q], r.Allocs[RawPgx+" "+q]
		// Mallocs also counts the runtime's and the pool's background work:
		// a tenth of an allocation per operation is noise, not the module.
		out = append(out, Target{Goal: "no allocation over raw pgx per " + q, Known: r.Allocs != nil, Met: m <= raw+0.1,
			Measured: fmt.Sprintf("module %.1f, raw pgxpool %.1f allocations per %s", m, raw, q)})
	}

	for _, g := range []struct {
		other string
		conc  int
		want  float64
	}{{PgxStdlib, 8, 1.0}, {PgxStdlib, 32, 1.1}, {LibPQ, 8, 2}, {LibPQ, 32, 2}, {PgBench, 8, 0.75}} {
		for _, t := range []Transport{TCP, Socket} {
			ratio, ok := r.compare("module ÷ "+g.other, Point{t, "point", g.conc}, Module, g.other)
			out = append(out, Target{Goal: fmt.Sprintf("point lookup, %s, %s: ≥ %.2f× %s", goroutines(g.conc), transportTitle(t), g.want, g.other),
				Known: ok, Met: ratio.Median >= g.want, Measured: ratioText(ratio)})
		}
	}

	for _, conc := range []int{8, 32} {
		ratio, ok := r.compare("module ÷ pgbench through PgBouncer", Point{"pgbouncer", "point", conc}, Module, PgBench)
		out = append(out, Target{Goal: fmt.Sprintf("through PgBouncer, %s: ≥ 0.9× pgbench", goroutines(conc)), Known: ok,
			Met: ratio.Median >= 0.9, Measured: ratioText(ratio)})
	}

	if c := r.Cycle; c != nil {
		out = append(out, Target{Goal: "an fx app with the module: start → ready → stop ≤ 1.15× a plain main", Known: true,
			Met: c.ModuleRatio.Median <= 1.15, Measured: fmt.Sprintf("%s; %.1f ms against %.1f ms, medians of %d runs each",
				ratioText(c.ModuleRatio), c.Module.Median*1000, c.Plain.Median*1000, c.Runs)})
		out = append(out, Target{Goal: "the whole service (metrics, HTTP, migrations module): start → ready → stop ≤ 1.15× a plain main", Known: true,
			Met: c.ServiceRatio.Median <= 1.15, Measured: fmt.Sprintf("%s; %.1f ms against %.1f ms",
				ratioText(c.ServiceRatio), c.Service.Median*1000, c.Plain.Median*1000)})
	}
	if m := r.RSS; m != nil {
		out = append(out, Target{Goal: "idle service peak RSS < 20 MB", Known: true, Met: m.PeakKB < 20*1024,
			Measured: fmt.Sprintf("%.1f MB after %d probes of /readyz, /metrics, /healthz", float64(m.PeakKB)/1024, m.Probes)})
	}
	if db, tpl := r.TestDB["database-p50-ms"], r.TestDB["template-p50-ms"]; tpl > 0 {
		out = append(out, Target{Goal: "test database ≤ 2× a bare CREATE DATABASE … TEMPLATE", Known: true, Met: db <= 2*tpl,
			Measured: fmt.Sprintf("%.2f× (median %.1f ms against %.1f ms; p95 %.1f against %.1f)", db/tpl, db, tpl,
				r.TestDB["database-p95-ms"], r.TestDB["template-p95-ms"])})
	}
	return out
}

// pairSamples are the samples of the named pairing.
func (r Report) pairSamples(pairing string) []Sample {
	var out []Sample
	for _, s := range r.Pairs {
		if s.Pairing == pairing {
			out = append(out, s)
		}
	}
	return out
}

// compare is Compare over the named pairing's samples, or over the main
// runs when that pairing was not measured.
func (r Report) compare(pairing string, p Point, a, b string) (Ratio, bool) {
	if paired := r.pairSamples(pairing); len(paired) > 0 {
		return Compare(paired, p, a, b)
	}
	return Compare(r.Samples, p, a, b)
}

func ratioText(r Ratio) string {
	if r.Rounds == 0 {
		return "not measured"
	}
	return fmt.Sprintf("%.2f× (rounds %.2f–%.2f)", r.Median, r.Min, r.Max)
}

// WriteMarkdown writes the report as Markdown.
func (r Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\nMeasured on %s. Regenerate with `%s`.\n\n", r.Machine, r.Command)
	fmt.Fprintf(&b, "Each run lasts %s; every point repeats %d times, the contenders interleaved and their order rotating from round "+
		"to round. Throughput is the median of the rounds, with their range; a ratio is the median of the rounds' ratios. "+
		"Go contenders use pools of %d connections; pgbench (`-M prepared`, 2 threads) opens one connection per client. "+
		"Client and server share the machine's cores, so the client's CPU time per operation decides throughput.\n\n",
		r.Plan.Duration, r.Plan.Rounds, PoolSize)

	b.WriteString("## Targets\n\n| goal | measured | |\n|---|---|---|\n")
	for _, t := range r.Targets() {
		verdict := "met"
		switch {
		case !t.Known:
			verdict, t.Measured = "not measured", "—"
		case !t.Met:
			verdict = "**missed**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Goal, t.Measured, verdict)
	}
	if r.Chart != "" {
		fmt.Fprintf(&b, "\n![throughput by concurrency](%s)\n", r.Chart)
	}

	summaries := Summarise(r.Samples)
	contenders := presentContenders(r.Samples)
	for _, t := range r.Plan.Transports {
		for _, wl := range r.Plan.Workloads {
			fmt.Fprintf(&b, "\n## %s, %s\n\nThroughput, %s per second:\n\n| goroutines |", wl.Title, transportTitle(t), wl.Units)
			for _, c := range contenders {
				fmt.Fprintf(&b, " %s |", c)
			}
			b.WriteString(" module ÷ pgxpool | module ÷ pgbench |\n|---|" + strings.Repeat("---|", len(contenders)+2) + "\n")
			for _, conc := range r.Plan.Concurrency {
				p := Point{t, wl.Name, conc}
				fmt.Fprintf(&b, "| %d |", conc)
				for _, c := range contenders {
					s := summaries[p][c]
					fmt.Fprintf(&b, " %s |", throughputText(s))
				}
				raw, _ := Compare(r.Samples, p, Module, RawPgx)
				ref, _ := Compare(r.Samples, p, Module, PgBench)
				fmt.Fprintf(&b, " %s | %s |\n", ratioText(raw), ratioText(ref))
			}
			fmt.Fprintf(&b, "\nLatency p50 / p99 / mean (pgbench: its mean only), and the client's CPU time per %s:\n\n| goroutines |", wl.Unit)
			for _, c := range contenders {
				fmt.Fprintf(&b, " %s |", c)
			}
			b.WriteString("\n|---|" + strings.Repeat("---|", len(contenders)) + "\n")
			for _, conc := range r.Plan.Concurrency {
				fmt.Fprintf(&b, "| %d |", conc)
				for _, c := range contenders {
					s := summaries[Point{t, wl.Name, conc}][c]
					lat := us(s.P50) + " / " + us(s.P99) + " / " + us(s.Mean)
					if s.P50 == 0 {
						lat = "mean " + us(s.Mean)
					}
					fmt.Fprintf(&b, " %s; cpu %s |", lat, us(s.CPUPerOp))
				}
				b.WriteString("\n")
			}
		}
	}

	if len(r.Pairs) > 0 {
		pairs := 0
		for _, s := range r.Pairs {
			pairs = max(pairs, s.Round+1)
		}
		fmt.Fprintf(&b, "\n## Paired comparisons\n\nThe targets rest on these: at each point, %d back-to-back pairs of %s runs "+
			"(pgbench: whole seconds), the order alternating; the ratio is the median of the pairs' ratios, with their range. "+
			"Throughput and client CPU per operation are each one's medians. Through PgBouncer the module runs with "+
			"`DB_QUERY_EXEC_MODE=exec` and pgbench with `-M extended` (unnamed statements both), against %d server connections.\n",
			pairs, r.PairDuration, PoolSize)
		for _, p := range Pairings() {
			samples := r.pairSamples(p.Name)
			if len(samples) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\n### %s\n\n| transport | workload | goroutines | ratio | %s | %s | CPU per op, %s / %s |\n|---|---|---|---|---|---|---|\n",
				p.Name, p.A, p.B, p.A, p.B)
			ps := Summarise(samples)
			for _, pt := range Points(samples) {
				ratio, _ := Compare(samples, pt, p.A, p.B)
				a, bb := ps[pt][p.A], ps[pt][p.B]
				transport := transportTitle(pt.Transport)
				if p.Bouncer {
					transport = "PgBouncer, TCP"
				}
				fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s / %s |\n", transport, pt.Workload, pt.Concurrency,
					ratioText(ratio), throughputText(a), throughputText(bb), us(a.CPUPerOp), us(bb.CPUPerOp))
			}
		}
	}

	if len(r.Allocs) > 0 {
		b.WriteString("\n## Allocations per operation\n\nCounted over 10,000 operations on one goroutine (`runtime.MemStats.Mallocs`).\n\n| operation | allocations |\n|---|---|\n")
		for _, k := range sortedKeys(r.Allocs) {
			fmt.Fprintf(&b, "| %s | %.2f |\n", k, r.Allocs[k])
		}
	}
	if c := r.Cycle; c != nil {
		fmt.Fprintf(&b, "\n## Start → ready → stop\n\nWhole processes (static builds), timed by hyperfine (%d runs each, in %d rounds "+
			"of rotating order, each after 2 warm-ups): "+
			"an fx app holding `dbmodule.Module` (pool made, pinged, closed), the whole service (`app.New`: logger, module, metrics registry, "+
			"HTTP server listening), and a plain main that makes and pings the same pool.\n\n"+
			"| process | median | mean ± σ | min – max |\n|---|---|---|---|\n", c.Runs, c.Rounds)
		for _, row := range []struct {
			name string
			t    Timing
		}{{"fx app with dbmodule.Module", c.Module}, {"the service, app.New", c.Service}, {"plain main", c.Plain}} {
			fmt.Fprintf(&b, "| %s | %.2f ms | %.2f ± %.2f ms | %.2f – %.2f ms |\n", row.name, row.t.Median*1000, row.t.Mean*1000,
				row.t.Stddev*1000, row.t.Min*1000, row.t.Max*1000)
		}
	}
	if m := r.RSS; m != nil {
		fmt.Fprintf(&b, "\n## Idle service memory\n\n`cmd/app`, ready, after %d probes: peak RSS (VmHWM) %.1f MB.\n", m.Probes, float64(m.PeakKB)/1024)
	}
	if len(r.TestDB) > 0 {
		b.WriteString("\n## A database per test\n\n50 rounds, interleaved (`BenchmarkNewDatabase` in dbmodule/dbtest).\n\n| way | median | p95 |\n|---|---|---|\n")
		for _, way := range []string{"database", "template", "migrate"} {
			fmt.Fprintf(&b, "| %s | %.1f ms | %.1f ms |\n", map[string]string{
				"database": "`Server.Database` (clone of the migrated template, connections included)",
				"template": "bare `CREATE DATABASE … TEMPLATE`",
				"migrate":  "`CREATE DATABASE` + every migration",
			}[way], r.TestDB[way+"-p50-ms"], r.TestDB[way+"-p95-ms"])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func presentContenders(samples []Sample) []string {
	var out []string
	for _, c := range Contenders() {
		if slices.ContainsFunc(samples, func(s Sample) bool { return s.Contender == c }) {
			out = append(out, c)
		}
	}
	return out
}

func throughputText(s Summary) string {
	if s.Runs == 0 {
		return "—"
	}
	text := fmt.Sprintf("%.0f (%.0f–%.0f)", s.Throughput, s.Min, s.Max)
	if s.Errors > 0 {
		text += fmt.Sprintf(", %d errors", s.Errors)
	}
	return text
}

func transportTitle(t Transport) string {
	switch t {
	case Socket:
		return "unix socket"
	case "pgbouncer":
		return "PgBouncer"
	}
	return "TCP loopback"
}

func us(d time.Duration) string {
	if d < 100*time.Microsecond {
		return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// goroutines is "1 goroutine", "8 goroutines".
func goroutines(n int) string {
	if n == 1 {
		return "1 goroutine"
	}
	return fmt.Sprintf("%d goroutines", n)
}

// WriteJSON writes the whole report as JSON, which ReadReport reads back.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// ReadReport reads a report WriteJSON wrote, so that it can be rendered
// again without measuring again.
func ReadReport(rd io.Reader) (Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return Report{}, fmt.Errorf("decode report: %w", err)
	}
	if len(r.Samples) == 0 || len(r.Plan.Workloads) == 0 {
		return Report{}, fmt.Errorf("decode report: no plan or no samples in it (written before dbbench saved whole reports?)")
	}
	// A workload's scripts are not in the JSON; take them from the name.
	for i, w := range r.Plan.Workloads {
		full, err := WorkloadNamed(w.Name)
		if err != nil {
			return Report{}, fmt.Errorf("decode report: %w", err)
		}
		r.Plan.Workloads[i] = full
	}
	return r, nil
}
