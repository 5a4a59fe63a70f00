package dbtest

import (
	"math"
	"time"
)

// sizer decides how many clones to keep ready: enough to cover the requests
// expected while one clone is built, twice over for bursts, plus one;
// bounded by min and max. It learns the pace of requests and the build
// time as moving averages, so the pool grows when tests ask fast (many
// parallel tests, short ones) and shrinks back when they slow down.
type sizer struct {
	min, max int
	gap      time.Duration // mean time between requests
	build    time.Duration // mean time to build a clone
	last     time.Time     // the latest request
}

// weight of the newest sample in the moving averages: a few requests are
// enough to follow a change of pace.
const newest = 0.25

func average(mean, sample time.Duration) time.Duration {
	if mean == 0 {
		return sample
	}
	return time.Duration(newest*float64(sample) + (1-newest)*float64(mean))
}

// request notes a request at now.
func (z *sizer) request(now time.Time) {
	if !z.last.IsZero() {
		z.gap = average(z.gap, now.Sub(z.last))
	}
	z.last = now
}

// built notes a clone that took d to build.
func (z *sizer) built(d time.Duration) { z.build = average(z.build, d) }

// target is how many clones to keep ready.
func (z *sizer) target() int {
	if z.gap <= 0 || z.build <= 0 {
		return z.min
	}
	n := int(math.Ceil(2*float64(z.build)/float64(z.gap))) + 1
	return max(z.min, min(z.max, n))
}
