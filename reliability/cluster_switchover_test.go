package reliability_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/internal/pgcluster"
)

// switchovers is how many planned switchovers TestClusterSwitchovers runs:
// CLUSTER_SWITCHOVERS, or 20, the count. A round takes about four
// seconds here, so the cluster tests take about two minutes on two cores.
func switchovers(t *testing.T) int {
	t.Helper()
	v := os.Getenv("CLUSTER_SWITCHOVERS")
	if v == "" {
		return 20
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("CLUSTER_SWITCHOVERS=%q: want a number of switchovers, at least 1", v)
	}
	return n
}

// Planned switchovers under a steady write load through InTx (4 goroutines,
// about 250 writes a second, a 5s deadline each): no acknowledged write is
// lost, no write fails that never reached a server, no call outlives its
// deadline, the pool dials a bounded number of times, and its first write
// lands within 100ms of the cluster accepting writes again (as a probe
// outside the module sees it) after an outage of up to 1.5s.
func TestClusterSwitchovers(t *testing.T) {
	c := healthyCluster(t)
	rounds := switchovers(t)
	a := startClusterApp(t, config.DB{URL: c.PrimaryURL("postgres")})
	createTable(t, a.q, "switchover_writes")
	probe, err := c.StartWriteProbe(10 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	w := startWriters(a.tx, "switchover_writes", 4, 12*time.Millisecond)

	type round struct {
		start, end    time.Time
		took          time.Duration
		cluster       pgcluster.Outage
		appOutage     time.Duration
		firstWriteLag time.Duration
		dials         int64
	}
	var rs []round
	begin := time.Now()
	for i := range rounds {
		warm := time.Now()
		waitFor(t, "writes between switchovers", func() bool { return okAfter(w.snapshot(), warm) >= 50 })
		r := round{start: time.Now()}
		dials := a.dials.n.Load()
		if err := c.Switchover(context.Background()); err != nil {
			t.Fatalf("round %d: %v", i+1, err)
		}
		r.took = time.Since(r.start)
		waitFor(t, "the probe to see the cluster back", func() bool {
			_, ok := pgcluster.OutageAfter(probe.Attempts(), r.start)
			return ok
		})
		r.cluster, _ = pgcluster.OutageAfter(probe.Attempts(), r.start)
		waitFor(t, "the app to write again", func() bool { return okAfter(w.snapshot(), r.cluster.FirstOK) >= 1 })
		r.end = time.Now()
		r.dials = a.dials.n.Load() - dials
		// The app's outage: the longest time between two of its writes in
		// the round. It may start later than the probe's, whose every
		// attempt is a new connection: a draining primary refuses those
		// while its existing connections still write.
		var ends []time.Time
		for _, wr := range w.snapshot() {
			if wr.err == nil && wr.end.After(r.start.Add(-time.Second)) {
				ends = append(ends, wr.end)
			}
		}
		slices.SortFunc(ends, time.Time.Compare)
		var lastOK, firstOK time.Time
		for i := 1; i < len(ends); i++ {
			if ends[i].Sub(ends[i-1]) > firstOK.Sub(lastOK) {
				lastOK, firstOK = ends[i-1], ends[i]
			}
		}
		r.appOutage = firstOK.Sub(lastOK)
		r.firstWriteLag = firstOK.Sub(r.cluster.FirstOK)
		rs = append(rs, r)
	}
	writes := w.stop()
	probe.Stop()
	elapsed := time.Since(begin)

	have := present(t, c.PrimaryURL("postgres"), "switchover_writes")
	var dials int64
	var outages []pgcluster.Outage
	var down time.Duration
	for _, r := range rs {
		outages = append(outages, r.cluster)
		down += r.cluster.Duration()
	}
	for i, r := range rs {
		var in []write
		for _, wr := range writes {
			if !wr.start.Before(r.start.Add(-time.Second)) && wr.start.Before(r.end) {
				in = append(in, wr)
			}
		}
		dials += r.dials
		t.Logf("round %2d: switchover %s; cluster outage %s (%d probe writes failed); app outage %s, its first write %+dms after the cluster's; "+
			"%d dials; writes: %s", i+1, r.took.Round(time.Millisecond), r.cluster.Duration().Round(time.Millisecond), r.cluster.Failed,
			r.appOutage.Round(time.Millisecond), r.firstWriteLag.Milliseconds(), r.dials, judge(in, have, outages))
		// The pool dials every 40-60ms for the first 1.5s of an outage, then
		// about once a second, to spare a struggling server (see the
		// connect backoff); so the bound follows the outage's length.
		bound := 100 * time.Millisecond
		if r.cluster.Duration() > 1500*time.Millisecond {
			bound = 1100 * time.Millisecond
		}
		if r.firstWriteLag > bound {
			t.Errorf("round %d: the app's first write came %s after the cluster accepted writes, after an outage of %s; want at most %s",
				i+1, r.firstWriteLag, r.cluster.Duration(), bound)
		}
	}
	v := judge(writes, have, outages)
	rate := float64(v.acked) / (elapsed - down).Seconds()
	t.Logf("%d switchovers in %s (cluster refusing writes %s of it); %.0f writes/s while it accepted them; %s; "+
		"%d dials in all (%.1f per switchover); %d 'unreachable' and %d 'reachable again' log lines",
		rounds, elapsed.Round(time.Second), down.Round(time.Millisecond), rate, v, dials, float64(dials)/float64(rounds),
		a.logs.FilterMessage("database unreachable").Len(), a.logs.FilterMessage("database reachable again").Len())
	for _, wr := range writes {
		if wr.err != nil && !have[wr.id] {
			t.Logf("write %d failed after %s: %v", wr.id, wr.end.Sub(wr.start).Round(time.Millisecond), wr.err)
		}
	}
	if v.lost > 0 || v.unsent > 0 || v.overdue > 0 {
		t.Errorf("%d acknowledged writes lost, %d failed that never reached a server, %d past their deadline; want none", v.lost, v.unsent, v.overdue)
	}
	if v.lostInTx+v.commitUnknown > 0 {
		// The server ended these transactions under them; InTx owns
		// whether to run them again (before COMMIT) and how to tell an
		// unknown commit outcome (dbmodule/tx.go).
		t.Logf("%d writes failed in transactions the old primary ended as it shut down (%d before COMMIT, %d after it was sent); none committed",
			v.lostInTx+v.commitUnknown, v.lostInTx, v.commitUnknown)
	}
	if rate < 200 {
		t.Errorf("the load ran at %.0f writes/s; want at least 200", rate)
	}
	// The bound: at most 200 dials over three switchovers.
	if dials > int64(rounds)*200/3 {
		t.Errorf("%d dials over %d switchovers; want at most %d", dials, rounds, rounds*200/3)
	}
	if n := a.logs.FilterMessage("database unreachable").Len(); n > rounds {
		t.Errorf("%d 'database unreachable' lines for %d switchovers; want at most one each", n, rounds)
	}
}

// waitFor polls cond until it holds, for at most a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
