package bench

import (
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
// throughput.
type Summary struct {
	Throughput, Min, Max float64
	P50, P99, Mean       time.Duration
	CPUPerOp             time.Duration
	Errors               int64
	Runs                 int
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
			var errs int64
			for _, s := range runs {
				tp = append(tp, s.Throughput())
				p50, p99, mean, cpu = append(p50, s.P50), append(p99, s.P99), append(mean, s.Mean), append(cpu, s.CPUPerOp())
				errs += s.Errors
			}
			out[p][name] = Summary{
				Throughput: median(tp), Min: slices.Min(tp), Max: slices.Max(tp),
				P50: median(p50), P99: median(p99), Mean: median(mean), CPUPerOp: median(cpu),
				Errors: errs, Runs: len(runs),
			}
		}
	}
	return out
}

// A Ratio compares two contenders' throughput at one point, round by round:
// runs of one round ran back to back, so each round's ratio is the fairest
// single measure, and the median of them the figure to quote.
type Ratio struct {
	Median, Min, Max float64
	Rounds           int
}

// Compare returns the throughput ratio a/b at p.
func Compare(samples []Sample, p Point, a, b string) (Ratio, bool) {
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
	for _, r := range byRound {
		if ta, tb := r[a], r[b]; ta > 0 && tb > 0 {
			ratios = append(ratios, ta/tb)
		}
	}
	if len(ratios) == 0 {
		return Ratio{}, false
	}
	return ratioOf(ratios), true
}

// ratioOf summarises the rounds' ratios, which it sorts.
func ratioOf(ratios []float64) Ratio {
	if len(ratios) == 0 {
		return Ratio{}
	}
	return Ratio{Median: median(ratios), Min: slices.Min(ratios), Max: slices.Max(ratios), Rounds: len(ratios)}
}

// median of values, which it sorts; the lower middle for an even count.
func median[T float64 | time.Duration](values []T) T {
	if len(values) == 0 {
		return 0
	}
	slices.Sort(values)
	return values[(len(values)-1)/2]
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
