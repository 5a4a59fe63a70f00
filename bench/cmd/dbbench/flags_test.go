package main

import (
	"strings"
	"testing"
	"time"
)

func TestPlanFromRefusesBadFlags(t *testing.T) {
	ok := func() (time.Duration, int, string, string, string, string) {
		return time.Second, 6, "1,8", "point", "tcp", "module,pgbench,pgbench-pool"
	}
	d, rounds, conc, wl, tr, cont := ok()
	if plan, err := planFrom(d, rounds, conc, wl, tr, cont); err != nil || len(plan.Contenders) != 3 || len(plan.Concurrency) != 2 {
		t.Fatalf("planFrom(good flags) = %+v, %v", plan, err)
	}
	for name, c := range map[string]struct {
		mutate func(*time.Duration, *int, *string, *string, *string, *string)
		flag   string
	}{
		"contender":   {func(_ *time.Duration, _ *int, _, _, _, c *string) { *c = "module,pgbench10" }, "-contenders"},
		"rounds":      {func(_ *time.Duration, r *int, _, _, _, _ *string) { *r = 0 }, "-rounds"},
		"duration":    {func(d *time.Duration, _ *int, _, _, _, _ *string) { *d = 0 }, "-duration"},
		"concurrency": {func(_ *time.Duration, _ *int, c, _, _, _ *string) { *c = "8,x" }, "-concurrency"},
		"workload":    {func(_ *time.Duration, _ *int, _, w, _, _ *string) { *w = "point,nope" }, "-workloads"},
		"transport":   {func(_ *time.Duration, _ *int, _, _, t, _ *string) { *t = "udp" }, "-transports"},
	} {
		d, rounds, conc, wl, tr, cont := ok()
		c.mutate(&d, &rounds, &conc, &wl, &tr, &cont)
		if _, err := planFrom(d, rounds, conc, wl, tr, cont); err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%s: error %v, want one naming %s", name, err, c.flag)
		}
	}
}

func TestDurationList(t *testing.T) {
	got, err := durationList("100ms,1s")
	if err != nil || len(got) != 2 || got[0] != 100*time.Millisecond || got[1] != time.Second {
		t.Errorf("durationList = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1s,", "-1s", "fast"} {
		if _, err := durationList(bad); err == nil || !strings.Contains(err.Error(), "-calibrate") {
			t.Errorf("durationList(%q) error %v, want one naming -calibrate", bad, err)
		}
	}
}
