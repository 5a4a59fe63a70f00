package dbtest

import (
	"testing"
	"time"
)

func TestSizerFollowsThePace(t *testing.T) {
	z := sizer{min: 2, max: 8}
	if got := z.target(); got != 2 {
		t.Fatalf("target before any request = %d, want the minimum 2", got)
	}
	now := time.Now()
	ask := func(n int, gap time.Duration) {
		for range n {
			now = now.Add(gap)
			z.request(now)
		}
	}
	for range 10 {
		z.built(10 * time.Millisecond)
	}
	ask(20, 100*time.Millisecond) // slower than a build: the minimum
	if got := z.target(); got != 2 {
		t.Errorf("target with a request every 100 ms, 10 ms builds = %d, want 2", got)
	}
	ask(20, 4*time.Millisecond) // 2.5 requests per build: 2*2.5+1 = 6
	if got := z.target(); got != 6 {
		t.Errorf("target with a request every 4 ms, 10 ms builds = %d, want 6", got)
	}
	ask(20, time.Millisecond) // faster than the maximum covers
	if got := z.target(); got != 8 {
		t.Errorf("target with a request every 1 ms = %d, want the maximum 8", got)
	}
	ask(20, time.Second) // the pace drops: back to the minimum
	if got := z.target(); got != 2 {
		t.Errorf("target after the pace dropped = %d, want 2", got)
	}
}
