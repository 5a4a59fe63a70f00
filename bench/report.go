package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// A Report is everything one run measured.
type Report struct {
	Machine string // what it ran on
	Command string // how to run it again
	// ServerCPUs and ClientCPUs are the CPUs the server (and PgBouncer) and
	// the client (dbbench and the pgbench it starts) were pinned to, nil
	// when not; ClientProcs is the client's GOMAXPROCS.
	ServerCPUs, ClientCPUs []int
	ClientProcs            int
	Plan                   Plan
	Samples                []Sample
	Pairs                  []Sample           // RunPairs', over Pairings; nil if not measured
	PairDuration           time.Duration      // of each paired run
	PairPolicy             PairPolicy         // how many pairs each point got
	Allocs                 map[string]float64 // "module QueryRow" and the like: allocations per operation
	Cycle                  *Cycle
	RSS                    *IdleRSS
	TestDB                 TestDB
	Chart                  string // the chart's file name, beside the report
}

// WriteMarkdown writes the report as Markdown.
func (r Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\nMeasured on %s. Regenerate with `%s`.\n\n", r.Machine, r.Command)
	fmt.Fprintf(&b, "Each run lasts %s; every point repeats %d times, the contenders interleaved and their order rotating from round "+
		"to round. Throughput is the median of the rounds, with their range; a ratio is the median of the rounds' ratios. "+
		"The Go contenders use pools of %d connections. %s %s\n\n", r.Plan.Duration, r.Plan.Rounds, PoolSize, r.pgbenchText(), r.placementText())

	r.targetsMarkdown(&b)
	if r.Chart != "" {
		fmt.Fprintf(&b, "\n![throughput by concurrency](%s)\n", r.Chart)
	}
	r.tablesMarkdown(&b)
	r.pairsMarkdown(&b)

	if len(r.Allocs) > 0 {
		b.WriteString("\n## Allocations per operation\n\nCounted over 10,000 operations on one goroutine (`runtime.MemStats.Mallocs`).\n\n| operation | allocations |\n|---|---|\n")
		for _, k := range sortedKeys(r.Allocs) {
			fmt.Fprintf(&b, "| %s | %.2f |\n", k, r.Allocs[k])
		}
	}
	if c := r.Cycle; c != nil {
		fmt.Fprintf(&b, "\n## Start → ready → stop\n\nWhole processes (static builds), timed by hyperfine (%d runs each, in %d rounds "+
			"of rotating order, each after 2 warm-ups; rounds continue from the minimum until both ratios' 95 %% ranges are under %.0f %% of "+
			"their medians, or the maximum): "+
			"an fx app holding `dbmodule.Module` (pool made, pinged, closed), the whole service (`app.New`: logger, module, metrics registry, "+
			"HTTP server listening), and a plain main that makes and pings the same pool. A ratio is the median of the rounds' ratios "+
			"of medians.\n\n"+
			"| process | median | mean ± σ | min – max |\n|---|---|---|---|\n", c.Runs, c.Rounds, MaxWidth*100)
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
	r.TestDB.markdown(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

func (r Report) targetsMarkdown(b *strings.Builder) {
	b.WriteString("## Targets\n\n")
	if r.PairPolicy.Max > 0 {
		fmt.Fprintf(b, "A ratio's range is a 95 %% confidence interval of its median, from the order statistics of its rounds (no assumption on "+
			"their distribution); its width is relative to the median. Each paired point ran %d to %d pairs of %s runs (with pgbench %s), "+
			"two more at a time until its range was under %.0f %% of its median.\n\n", r.PairPolicy.Min, r.PairPolicy.Max, r.PairDuration,
			max(r.PairDuration, PgbenchMinRun), r.PairPolicy.Width*100)
	}
	b.WriteString("| goal | measured | 95 % range of the ratio | |\n|---|---|---|---|\n")
	narrow, ratios := 0, 0
	for _, t := range r.Targets() {
		verdict, rng := "met", "—"
		if t.Ratio != nil && t.Known {
			rng = rangeText(*t.Ratio)
			ratios++
			if w := t.Ratio.Width(); w >= 0 && w <= MaxWidth {
				narrow++
			}
		}
		switch {
		case !t.Known:
			verdict, t.Measured = "not measured", "—"
		case !t.Met:
			verdict = "**missed**"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", t.Goal, t.Measured, rng, verdict)
	}
	if ratios > 0 {
		fmt.Fprintf(b, "\n%d of the %d ratios above have a 95 %% range under %.0f %% of their median.\n", narrow, ratios, MaxWidth*100)
	}
}

func throughputText(s Summary) string {
	var text string
	switch {
	case s.Runs == 0 && s.Empty == 0:
		return "—"
	case s.Runs > 0:
		text = fmt.Sprintf("%.0f (%.0f–%.0f)", s.Throughput, s.Min, s.Max)
	}
	if s.Empty > 0 {
		text = strings.TrimPrefix(text+fmt.Sprintf(", %d runs measured nothing", s.Empty), ", ")
	}
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

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// goroutines is "1 goroutine", "8 goroutines".
func goroutines(n int) string {
	if n == 1 {
		return "1 goroutine"
	}
	return fmt.Sprintf("%d goroutines", n)
}
