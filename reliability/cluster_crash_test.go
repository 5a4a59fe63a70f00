package reliability_test

import (
	"context"
	"testing"
	"time"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/internal/pgcluster"
)

// crashGoal is the write downtime a crash of the primary may cost, from the
// kill to the first write the promoted standby accepts, with the monitor
// tuned by pgcluster.FastFailover. The anchors: Percona's operator takes
// 7-8s through PgBouncer, AWS's JDBC wrapper 1-30s.
const crashGoal = 10 * time.Second

// A crash of the primary (its keeper and postmaster killed, so the monitor
// must promote the standby) under a write load: the writes are down for
// as long as the cluster takes to promote, no acknowledged write is lost,
// and no call outlives its deadline.
func TestClusterCrashPromotesTheStandby(t *testing.T) {
	c := healthyCluster(t)
	ctx := context.Background()
	if err := c.TuneFailover(ctx, pgcluster.FastFailover); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.TuneFailover(ctx, pgcluster.Failover{}); err != nil {
			t.Error(err)
		}
	}()
	a := startClusterApp(t, config.DB{URL: c.PrimaryURL("postgres")})
	createTable(t, a.q, "crash_writes")
	probe, err := c.StartWriteProbe(10 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	w := startWriters(a.tx, "crash_writes", 4, 12*time.Millisecond)
	waitFor(t, "writes before the crash", func() bool { return okAfter(w.snapshot(), time.Time{}) >= 200 })

	old, err := c.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	crash := time.Now()
	if err := c.Crash(old); err != nil {
		t.Fatal(err)
	}
	var outage pgcluster.Outage
	waitFor(t, "the cluster to accept writes after the crash", func() bool {
		var ok bool
		outage, ok = pgcluster.OutageAfter(probe.Attempts(), crash)
		return ok
	})
	waitFor(t, "the app to write on the new primary", func() bool { return okAfter(w.snapshot(), outage.FirstOK) >= 50 })
	writes := w.stop()
	probe.Stop()
	var appFirst time.Time
	for _, wr := range writes {
		if wr.err == nil && wr.start.After(crash) && (appFirst.IsZero() || wr.end.Before(appFirst)) {
			appFirst = wr.end
		}
	}
	promoted, err := c.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := present(t, c.PrimaryURL("postgres"), "crash_writes")
	v := judge(writes, have, []pgcluster.Outage{outage})
	downtime := outage.FirstOK.Sub(crash)
	t.Logf("crash of %s: %s promoted; writes accepted again %s after the kill (probe), the app's first %s after it (%+dms after the cluster's); "+
		"%d dials; writes: %s", old.Name, promoted.Name, downtime.Round(time.Millisecond), appFirst.Sub(crash).Round(time.Millisecond),
		appFirst.Sub(outage.FirstOK).Milliseconds(), a.dials.n.Load(), v)

	rejoin := time.Now()
	if err := c.Restart(old); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s rejoined as the secondary %s after its restart", old.Name, time.Since(rejoin).Round(time.Millisecond))

	if promoted == old {
		t.Errorf("%s is still the primary: no promotion", old.Name)
	}
	if v.lost > 0 || v.unsent > 0 || v.overdue > 0 {
		t.Errorf("%d acknowledged writes lost, %d failed that never reached a server and were not waiting out an outage, %d past their deadline; want none",
			v.lost, v.unsent, v.overdue)
	}
	if downtime > crashGoal {
		t.Errorf("writes were down %s after the crash; the goal is at most %s", downtime, crashGoal)
	}
}
