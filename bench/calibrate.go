package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"
)

// A Spread is how much the paired ratio of two contenders varies at one
// point with runs of one duration: what choosing the pairs' count and
// duration rests on.
type Spread struct {
	Duration time.Duration
	Ratio    Ratio
	// SD is the standard deviation of the pairs' log ratios: a pair's
	// typical relative disagreement.
	SD float64
	// Needed is about how many pairs bring the 95 % interval under
	// MaxWidth: the interval of a median narrows as one over the root of
	// the count.
	Needed int
}

// Calibrate runs pairs pairs of p's first point at each of durations, and
// returns each duration's spread.
func Calibrate(ctx context.Context, env *Env, p Pairing, durations []time.Duration, pairs int, w io.Writer) ([]Spread, error) {
	p.Workloads, p.Concurrency, p.Transports = p.Workloads[:1], p.Concurrency[:1], p.Transports[:1]
	var out []Spread
	for _, d := range durations {
		samples, err := RunPairs(ctx, env, p, PairPolicy{Min: pairs, Max: pairs}, d, w)
		if err != nil {
			return out, err
		}
		pts := Points(samples)
		if len(pts) != 1 {
			return out, fmt.Errorf("calibrate: %d points, want 1", len(pts))
		}
		out = append(out, spreadOf(d, roundRatios(samples, pts[0], p.A, p.B)))
	}
	return out, nil
}

// spreadOf summarises the pairs' ratios of runs lasting d.
func spreadOf(d time.Duration, ratios []float64) Spread {
	s := Spread{Duration: d, Ratio: ratioOf(append([]float64(nil), ratios...))}
	var sum, squares float64
	for _, r := range ratios {
		sum += math.Log(r)
	}
	mean := sum / float64(len(ratios))
	for _, r := range ratios {
		squares += (math.Log(r) - mean) * (math.Log(r) - mean)
	}
	if len(ratios) > 1 {
		s.SD = math.Sqrt(squares / float64(len(ratios)-1))
	}
	if w := s.Ratio.Width(); w > 0 {
		s.Needed = int(math.Ceil(float64(len(ratios)) * (w / MaxWidth) * (w / MaxWidth)))
	}
	return s
}
