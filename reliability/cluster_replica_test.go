package reliability_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// A read is one read through ReadQuerier.
type read struct {
	at        time.Time
	onStandby bool
	stale     bool // under read-your-writes, the session's own write was missing
	err       error
}

// readers run reads from several goroutines until stopped.
type readers struct {
	stopped chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	reads   []read
}

func startReaders(goroutines int, once func(ctx context.Context) read) *readers {
	r := &readers{stopped: make(chan struct{})}
	for range goroutines {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for {
				select {
				case <-r.stopped:
					return
				case <-time.After(5 * time.Millisecond):
				}
				ctx, cancel := context.WithTimeout(context.Background(), writeDeadline)
				rd := once(ctx)
				cancel()
				rd.at = time.Now()
				r.mu.Lock()
				r.reads = append(r.reads, rd)
				r.mu.Unlock()
			}
		}()
	}
	return r
}

func (r *readers) snapshot() []read {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]read(nil), r.reads...)
}

func (r *readers) stop() []read {
	close(r.stopped)
	r.wg.Wait()
	return r.snapshot()
}

// readsSince counts the reads after at that went to the standby, to the
// primary, that failed, and that were stale.
func readsSince(reads []read, at time.Time) (standby, primary, failed, stale int) {
	for _, rd := range reads {
		switch {
		case rd.at.Before(at):
		case rd.err != nil:
			failed++
		case rd.onStandby:
			standby++
		default:
			primary++
		}
		if rd.stale && !rd.at.Before(at) {
			stale++
		}
	}
	return
}

// firstOnPrimary is when reads first went to the primary after at, and
// firstOnStandby when they first went to the standby.
func firstRead(reads []read, at time.Time, onStandby bool) time.Time {
	for _, rd := range reads {
		if rd.at.After(at) && rd.err == nil && rd.onStandby == onStandby {
			return rd.at
		}
	}
	return time.Time{}
}

func isInRecovery(ctx context.Context, q dbmodule.Querier) read {
	var rd read
	rd.err = q.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rd.onStandby)
	return rd
}

// The standby goes down and comes back while reads run: they move to the
// primary and back, none fails, and each change is logged once.
func TestClusterReplicaDownAndBack(t *testing.T) {
	c := healthyCluster(t)
	ctx := context.Background()
	a := startClusterApp(t, config.DB{URL: c.PrimaryURL("postgres"), ReadURL: c.ReadURL("postgres", "standby")})
	standby, err := c.Standby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := startReaders(4, func(ctx context.Context) read { return isInRecovery(ctx, a.reads) })
	waitFor(t, "reads on the standby", func() bool { s, _, _, _ := readsSince(r.snapshot(), time.Time{}); return s >= 100 })

	down := time.Now()
	if err := c.Crash(standby); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reads on the primary", func() bool { _, p, _, _ := readsSince(r.snapshot(), down); return p >= 100 })
	movedOff := firstRead(r.snapshot(), down, false).Sub(down)

	up := time.Now()
	if err := c.Restart(standby); err != nil {
		t.Fatal(err)
	}
	// Its keeper takes seconds to start it; the module's part is from when
	// it answers as a standby.
	waitFor(t, "the standby to answer", func() bool {
		conn, err := pgx.Connect(ctx, standby.URL("postgres"))
		if err != nil {
			return false
		}
		defer conn.Close(ctx)
		var r bool
		return conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&r) == nil && r
	})
	healthy := time.Now()
	waitFor(t, "reads on the standby again", func() bool { s, _, _, _ := readsSince(r.snapshot(), healthy); return s >= 100 })
	reads := r.stop()
	back := firstRead(reads, healthy, true).Sub(healthy)
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}

	for _, e := range a.logs.FilterMessageSnippet("rotation").All() {
		t.Logf("%s after the kill: %s %v", e.Time.Sub(down).Round(time.Millisecond), e.Message, e.ContextMap()["reason"])
	}
	_, _, failed, _ := readsSince(reads, time.Time{})
	t.Logf("standby down: reads on the primary %s after the kill; standby back (answering %s after its restart): reads on it again %s after; "+
		"%d reads, %d failed", movedOff.Round(time.Millisecond), healthy.Sub(up).Round(time.Millisecond), back.Round(time.Millisecond), len(reads), failed)
	if failed > 2 {
		t.Errorf("%d reads failed; want at most one per change of rotation", failed)
	}
	for msg, want := range map[string]int{
		"replica left read rotation": 1, "replica back in read rotation": 1,
		"no replica in read rotation: reads go to the primary": 1, "reads go to replicas again": 1,
	} {
		if n := a.logs.FilterMessage(msg).Len(); n != want {
			t.Errorf("%q logged %d times, want %d", msg, n, want)
		}
	}
	if back > 2*dbmodule.ReplicaCheckPeriod {
		t.Errorf("reads went back to the standby %s after it answered; want within two check periods", back)
	}
}

// With the standby's replay paused, sessions that read their own writes
// never read stale data: their reads go to the primary until the standby
// has replayed their write. The standby leaves rotation once it lags more
// than DB_REPLICA_MAX_LAG, and comes back once replay resumes.
func TestClusterReplicaLagAndReadYourWrites(t *testing.T) {
	c := healthyCluster(t)
	ctx := context.Background()
	const maxLag = 2 * time.Second
	a := startClusterApp(t, config.DB{URL: c.PrimaryURL("postgres"), ReadURL: c.ReadURL("postgres", "standby"), ReplicaMaxLag: maxLag})
	createTable(t, a.q, "ryw_writes")
	standby, err := c.Standby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var next atomic.Int64
	sessions := startReaders(4, func(ctx context.Context) read {
		ctx = dbmodule.WithReadYourWrites(ctx)
		id := next.Add(1)
		err := a.tx.InTx(ctx, func(q dbmodule.Querier) error {
			_, err := q.Exec(ctx, "INSERT INTO ryw_writes (id) VALUES ($1)", id)
			return err
		})
		if err != nil {
			return read{err: err}
		}
		var rd read
		var n int
		rd.err = a.reads.QueryRow(ctx, "SELECT count(*)::int, pg_is_in_recovery() FROM ryw_writes WHERE id = $1", id).Scan(&n, &rd.onStandby)
		rd.stale = rd.err == nil && n != 1
		return rd
	})
	plain := startReaders(1, func(ctx context.Context) read { return isInRecovery(ctx, a.reads) })
	start := time.Now()
	waitFor(t, "sessions to run", func() bool { s, p, _, _ := readsSince(sessions.snapshot(), start); return s+p >= 200 })
	healthyOnStandby, healthyOnPrimary, _, _ := readsSince(sessions.snapshot(), start)

	admin, err := pgx.Connect(ctx, standby.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	paused := time.Now()
	if _, err := admin.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "plain reads to leave the lagging standby", func() bool {
		left := firstRead(plain.snapshot(), paused, false)
		return !left.IsZero() && okReadsAfter(plain.snapshot(), left) >= 20
	})
	left := firstRead(plain.snapshot(), paused, false).Sub(paused)
	pausedStandby, pausedPrimary, _, _ := readsSince(sessions.snapshot(), paused)

	resumed := time.Now()
	if _, err := admin.Exec(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "plain reads back on the standby", func() bool {
		back := firstRead(plain.snapshot(), resumed, true)
		return !back.IsZero() && okReadsAfter(plain.snapshot(), back) >= 20
	})
	back := firstRead(plain.snapshot(), resumed, true).Sub(resumed)
	time.Sleep(time.Second) // sessions on a caught-up standby again: nothing to wait on but time
	all := sessions.stop()
	plainReads := plain.stop()
	resumedStandby, resumedPrimary, _, _ := readsSince(all, resumed)

	_, _, failed, stale := readsSince(all, time.Time{})
	_, _, plainFailed, _ := readsSince(plainReads, time.Time{})
	t.Logf("read-your-writes sessions: healthy %d on the standby, %d on the primary; replay paused %d / %d; resumed %d / %d; "+
		"%d failed, %d stale", healthyOnStandby, healthyOnPrimary, pausedStandby, pausedPrimary, resumedStandby, resumedPrimary, failed, stale)
	t.Logf("plain reads: left the standby %s after replay paused (DB_REPLICA_MAX_LAG %s, checks every %s), back %s after it resumed; %d of %d failed",
		left.Round(time.Millisecond), maxLag, dbmodule.ReplicaCheckPeriod, back.Round(time.Millisecond), plainFailed, len(plainReads))
	if stale > 0 || failed > 0 || plainFailed > 0 {
		t.Errorf("%d stale reads, %d failed sessions, %d failed plain reads; want none", stale, failed, plainFailed)
	}
	if left > maxLag+2*dbmodule.ReplicaCheckPeriod {
		t.Errorf("the lagging standby left rotation %s after replay paused; want within DB_REPLICA_MAX_LAG (%s) and one check period", left, maxLag)
	}
	if back > 2*dbmodule.ReplicaCheckPeriod {
		t.Errorf("the standby came back %s after replay resumed; want within two check periods", back)
	}
	if healthyOnStandby == 0 {
		t.Error("no read-your-writes read went to the healthy standby")
	}
}

func okReadsAfter(reads []read, at time.Time) int {
	n := 0
	for _, rd := range reads {
		if rd.err == nil && !rd.at.Before(at) {
			n++
		}
	}
	return n
}
