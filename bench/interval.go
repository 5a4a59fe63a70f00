package bench

import (
	"math"
	"slices"
)

// medianInterval returns a 95 % confidence interval for the median of the
// population values were drawn from, which it sorts: the order statistics
// x(k) and x(n+1-k) for the largest k whose binomial tail leaves at most
// 2.5 % on each side. It assumes nothing about the distribution (the rounds'
// ratios of a noisy machine are skewed), only that the values are
// independent. ok is false below 6 values, too few for 95 %.
func medianInterval(values []float64) (lo, hi float64, ok bool) {
	n := len(values)
	k := 0 // the interval's lower order statistic, 1-based; 0 for none
	for j := 1; j <= n/2; j++ {
		if binomialTail(n, j-1) > 0.025 {
			break
		}
		k = j
	}
	if k == 0 {
		return 0, 0, false
	}
	slices.Sort(values)
	return values[k-1], values[n-k], true
}

// binomialTail is P(X ≤ j) for X ~ Binomial(n, ½).
func binomialTail(n, j int) float64 {
	lgN, _ := math.Lgamma(float64(n + 1))
	var p float64
	for i := 0; i <= j; i++ {
		lgI, _ := math.Lgamma(float64(i + 1))
		lgR, _ := math.Lgamma(float64(n - i + 1))
		p += math.Exp(lgN - lgI - lgR - float64(n)*math.Ln2)
	}
	return p
}
