package bench

import (
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5}, // the mean of the two middle values, not the lower one
		{[]float64{10, 1}, 5.5},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := median([]time.Duration{4 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}); got != 2500*time.Microsecond {
		t.Errorf("median of 1–4 ms = %s, want 2.5ms", got)
	}
}

func TestMedianInterval(t *testing.T) {
	seq := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(n - i) // reversed: the function sorts
		}
		return v
	}
	if _, _, ok := medianInterval(seq(5)); ok {
		t.Error("5 values gave a 95 % interval; the binomial tail of the extremes alone is 6.25 %")
	}
	for _, c := range []struct {
		n      int
		lo, hi float64 // 1-based order statistics, from the binomial tables
	}{{6, 1, 6}, {10, 2, 9}, {20, 6, 15}, {40, 14, 27}, {100, 40, 61}} {
		lo, hi, ok := medianInterval(seq(c.n))
		if !ok || lo != c.lo || hi != c.hi {
			t.Errorf("n=%d: interval x(%v)–x(%v), %v; want x(%v)–x(%v)", c.n, lo, hi, ok, c.lo, c.hi)
		}
	}
	r := ratioOf([]float64{1.2, 0.8, 1, 1.1, 0.9, 1})
	if r.Lo != 0.8 || r.Hi != 1.2 || r.Median != 1 || r.Width() < 0.399 || r.Width() > 0.401 {
		t.Errorf("ratioOf = %+v, width %v: want 0.8–1.2 around 1, 40 %% wide", r, r.Width())
	}
	if w := ratioOf([]float64{1, 1.1}).Width(); w != -1 {
		t.Errorf("two rounds' width = %v, want -1 (no interval)", w)
	}
}

func TestPairPolicyEnough(t *testing.T) {
	narrow := []float64{1, 1.01, 0.99, 1, 1.02, 0.98, 1, 1}
	wide := []float64{0.7, 1.3, 0.8, 1.2, 0.9, 1.4, 0.6, 1}
	p := PairPolicy{Min: 6, Max: 8, Width: 0.1}
	for _, c := range []struct {
		ratios []float64
		want   bool
	}{
		{narrow[:4], false}, // below Min
		{narrow[:5], false}, // odd: each order must have run as often
		{narrow[:6], true},  // narrow from Min on
		{wide[:6], false},   // wide: more pairs
		{wide[:8], true},    // wide, but at Max
	} {
		if got := p.enough(c.ratios); got != c.want {
			t.Errorf("enough(%v) = %v, want %v", c.ratios, got, c.want)
		}
	}
	if exact := (PairPolicy{Min: 3, Max: 3}); !exact.enough([]float64{1, 2, 3}) || exact.enough([]float64{1, 2}) {
		t.Error("Min == Max did not run exactly that many")
	}
}

// TestSummariseLeavesOutEmptyRuns: a pgbench run that spent its time
// connecting measured nothing, and must not drag the median to 0.
func TestSummariseLeavesOutEmptyRuns(t *testing.T) {
	p := Point{TCP, "point", 32}
	var samples []Sample
	for round, ops := range []int64{100, 0, 300, 200} {
		samples = append(samples, Sample{Contender: PgBench, Transport: TCP, Workload: "point", Concurrency: 32, Round: round, Ops: ops,
			Elapsed: time.Duration(min(ops, 1)) * time.Second, CPU: time.Millisecond})
	}
	s := Summarise(samples)[p][PgBench]
	if s.Runs != 3 || s.Empty != 1 || s.Throughput != 200 || s.Min != 100 || s.Max != 300 {
		t.Errorf("summary %+v: want 3 runs, 1 empty, median 200 (100–300)", s)
	}
	if got := throughputText(s); got != "200 (100–300), 1 runs measured nothing" {
		t.Errorf("throughputText = %q", got)
	}
	if got := throughputText(Summary{Empty: 2}); got != "2 runs measured nothing" {
		t.Errorf("throughputText of only empty runs = %q", got)
	}
	if tp := (Sample{}).Throughput(); tp != 0 {
		t.Errorf("an empty sample's throughput = %v, want 0", tp)
	}
}
