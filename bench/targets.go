package bench

import "fmt"

// A Target is one of the issues' goals, with what was measured against it.
type Target struct {
	Goal, Measured string
	Met            bool
	Known          bool // false when the run did not measure it
	// Ratio, when the goal is on a ratio, is the one measured, whose
	// 95 % interval the report states.
	Ratio *Ratio
}

// Targets checks the report against the goals the module is held to. The
// ratios against pgbench are at points where pgbench has as many server
// connections as the module's pool (SameConns).
func (r Report) Targets() []Target {
	var out []Target
	// The module's handle against raw pgxpool, at every point measured.
	pairing := "module ÷ pgxpool"
	var worst Ratio
	where, n, widest := Point{}, 0, 0.0
	for _, p := range Points(r.pairSamples(pairing)) {
		if ratio, ok := r.compare(pairing, p, Module, RawPgx); ok {
			n++
			if n == 1 || ratio.Median < worst.Median {
				worst, where = ratio, p
			}
			if w := ratio.Width(); w < 0 || (widest >= 0 && w > widest) {
				widest = w
			}
		}
	}
	measured := fmt.Sprintf("lowest median ratio %.3f× (%s, %s, %s) over %d points; widest range of a point %s",
		worst.Median, transportTitle(where.Transport), where.Workload, goroutines(where.Concurrency), n, widthText(widest))
	out = append(out, Target{Goal: "module ≥ 0.98× raw pgxpool throughput at every concurrency", Known: n > 0, Met: worst.Median >= 0.98,
		Measured: measured, Ratio: &worst})

	for _, q := range []string{"QueryRow", "Exec"} {
		m, raw := r.Allocs[Module+" "+q], r.Allocs[RawPgx+" "+q]
		// Mallocs also counts the runtime's and the pool's background work:
		// a tenth of an allocation per operation is noise, not the module.
		out = append(out, Target{Goal: "no allocation over raw pgx per " + q, Known: r.Allocs != nil, Met: m <= raw+0.1,
			Measured: fmt.Sprintf("module %.1f, raw pgxpool %.1f allocations per %s", m, raw, q)})
	}

	for _, g := range []struct {
		pairing, other string
		conc           int
		want           float64
	}{
		{"module ÷ pgx-stdlib", PgxStdlib, 8, 1.0}, {"module ÷ pgx-stdlib", PgxStdlib, 32, 1.1},
		{"module ÷ lib/pq", LibPQ, 8, 2}, {"module ÷ lib/pq", LibPQ, 32, 2},
		{"module ÷ pgbench", SameConns(8), 8, 0.75},
	} {
		for _, t := range []Transport{TCP, Socket} {
			ratio, ok := r.compare(g.pairing, Point{t, "point", g.conc}, Module, g.other)
			out = append(out, Target{Goal: fmt.Sprintf("point lookup, %s, %s: ≥ %.2f× %s", goroutines(g.conc), transportTitle(t), g.want, g.other),
				Known: ok, Met: ratio.Median >= g.want, Measured: ratioText(ratio), Ratio: &ratio})
		}
	}

	for _, conc := range []int{8, 32} {
		ratio, ok := r.compare("module ÷ pgbench through PgBouncer", Point{"pgbouncer", "point", conc}, Module, PgBench)
		out = append(out, Target{Goal: fmt.Sprintf("through PgBouncer, %s: ≥ 0.9× pgbench", goroutines(conc)), Known: ok,
			Met: ratio.Median >= 0.9, Measured: ratioText(ratio), Ratio: &ratio})
	}

	if c := r.Cycle; c != nil {
		out = append(out, Target{Goal: "an fx app with the module: start → ready → stop ≤ 1.15× a plain main", Known: true,
			Met: c.ModuleRatio.Median <= 1.15, Ratio: &c.ModuleRatio, Measured: fmt.Sprintf("%s; %.1f ms against %.1f ms, medians of %d runs each",
				ratioText(c.ModuleRatio), c.Module.Median*1000, c.Plain.Median*1000, c.Runs)})
		out = append(out, Target{Goal: "the whole service (metrics, HTTP, migrations module): start → ready → stop ≤ 1.15× a plain main", Known: true,
			Met: c.ServiceRatio.Median <= 1.15, Ratio: &c.ServiceRatio, Measured: fmt.Sprintf("%s; %.1f ms against %.1f ms",
				ratioText(c.ServiceRatio), c.Service.Median*1000, c.Plain.Median*1000)})
	}
	if m := r.RSS; m != nil {
		out = append(out, Target{Goal: "idle service peak RSS < 20 MB", Known: true, Met: m.PeakKB < 20*1024,
			Measured: fmt.Sprintf("%.1f MB after %d probes of /readyz, /metrics, /healthz", float64(m.PeakKB)/1024, m.Probes)})
	}
	return append(out, r.TestDB.targets()...)
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

// rangeText states a ratio's 95 % interval and whether it is narrower than
// MaxWidth.
func rangeText(r Ratio) string {
	switch {
	case r.Rounds == 0:
		return "—"
	case r.Width() < 0 && r.Rounds >= 6:
		return "not recorded (a report from before ranges)"
	case r.Width() < 0:
		return fmt.Sprintf("none: %d rounds are too few for 95 %%", r.Rounds)
	case r.Width() > MaxWidth:
		return fmt.Sprintf("%.3f–%.3f, **%s wide** (over %.0f %%), %d rounds", r.Lo, r.Hi, widthText(r.Width()), MaxWidth*100, r.Rounds)
	}
	return fmt.Sprintf("%.3f–%.3f, %s wide, %d rounds", r.Lo, r.Hi, widthText(r.Width()), r.Rounds)
}

func widthText(w float64) string {
	if w < 0 {
		return "none (too few rounds)"
	}
	return fmt.Sprintf("%.1f %%", w*100)
}
