package bench

import (
	"maps"
	"slices"
	"time"
)

// A Point is one cell of a plan: a transport, workload and concurrency.
type Point struct {
	Transport   Transport
	Workload    string
	Concurrency int
}

// A Summary is a contender's runs at one point: medians, with the spread of
// throughput, over the Runs that measured something; Empty more processed
// no operation at all (a pgbench that spent its run connecting).
type Summary struct {
	Throughput, Min, Max float64
	P50, P99, Mean       time.Duration
	CPUPerOp             time.Duration
	Errors               int64
	Runs, Empty          int
}

// Summarise groups samples by point and contender.
func Summarise(samples []Sample) map[Point]map[string]Summary {
	groups := map[Point]map[string][]Sample{}
	for _, s := range samples {
		p := Point{s.Transport, s.Workload, s.Concurrency}
		if groups[p] == nil {
			groups[p] = map[string][]Sample{}
		}
		groups[p][s.Contender] = append(groups[p][s.Contender], s)
	}
	out := map[Point]map[string]Summary{}
	for p, byContender := range groups {
		out[p] = map[string]Summary{}
		for name, runs := range byContender {
			var tp []float64
			var p50, p99, mean, cpu []time.Duration
			var sum Summary
			for _, s := range runs {
				sum.Errors += s.Errors
				if s.Ops == 0 {
					sum.Empty++
					continue
				}
				tp = append(tp, s.Throughput())
				p50, p99, mean, cpu = append(p50, s.P50), append(p99, s.P99), append(mean, s.Mean), append(cpu, s.CPUPerOp())
			}
			if sum.Runs = len(tp); sum.Runs > 0 {
				sum.Throughput, sum.Min, sum.Max = median(tp), slices.Min(tp), slices.Max(tp)
				sum.P50, sum.P99, sum.Mean, sum.CPUPerOp = median(p50), median(p99), median(mean), median(cpu)
			}
			out[p][name] = sum
		}
	}
	return out
}

// A Ratio compares two contenders' throughput at one point, round by round:
// runs of one round ran back to back, so each round's ratio is the fairest
// single measure, and the median of them the figure to quote. Lo and Hi
// bound that median with 95 % confidence (see medianInterval); both are 0
// when there are too few rounds for such an interval.
type Ratio struct {
	Median, Min, Max float64
	Lo, Hi           float64
	Rounds           int
}

// Width is the 95 % interval's width relative to the median, or -1 when
// there are too few rounds for one.
func (r Ratio) Width() float64 {
	if r.Hi == 0 || r.Median == 0 {
		return -1
	}
	return (r.Hi - r.Lo) / r.Median
}

// MaxWidth is how wide, relative to its median, a headline ratio's 95 %
// interval may be: narrower than the differences the targets draw (0.98×,
// 0.9×, 1.15×) are from 1.
const MaxWidth = 0.10

// Compare returns the throughput ratio a/b at p.
func Compare(samples []Sample, p Point, a, b string) (Ratio, bool) {
	ratios := roundRatios(samples, p, a, b)
	if len(ratios) == 0 {
		return Ratio{}, false
	}
	return ratioOf(ratios), true
}

// roundRatios are a/b round by round at p, in the rounds' order, over the
// rounds in which both ran.
func roundRatios(samples []Sample, p Point, a, b string) []float64 {
	byRound := map[int]map[string]float64{}
	for _, s := range samples {
		if (Point{s.Transport, s.Workload, s.Concurrency}) != p || (s.Contender != a && s.Contender != b) {
			continue
		}
		if byRound[s.Round] == nil {
			byRound[s.Round] = map[string]float64{}
		}
		byRound[s.Round][s.Contender] = s.Throughput()
	}
	var ratios []float64
	for _, round := range slices.Sorted(maps.Keys(byRound)) {
		if ta, tb := byRound[round][a], byRound[round][b]; ta > 0 && tb > 0 {
			ratios = append(ratios, ta/tb)
		}
	}
	return ratios
}

// ratioOf summarises the rounds' ratios, which it sorts.
func ratioOf(ratios []float64) Ratio {
	if len(ratios) == 0 {
		return Ratio{}
	}
	r := Ratio{Median: median(ratios), Min: slices.Min(ratios), Max: slices.Max(ratios), Rounds: len(ratios)}
	r.Lo, r.Hi, _ = medianInterval(ratios)
	return r
}

// median of values, which it sorts: the middle one, or the mean of the two
// middle ones for an even count.
func median[T float64 | time.Duration](values []T) T {
	n := len(values)
	if n == 0 {
		return 0
	}
	slices.Sort(values)
	if n%2 == 1 {
		return values[n/2]
	}
	return (values[n/2-1] + values[n/2]) / 2
}

// Points lists the points of samples in plan order: transport, workload,
// concurrency.
func Points(samples []Sample) []Point {
	var out []Point
	for _, s := range samples {
		p := Point{s.Transport, s.Workload, s.Concurrency}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
