package dbmodule_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/internal/pgtemp"
)

// This file tests reconnection: after backend kills and server restarts
// the Listener LISTENs again and reports the gap, and it paces its attempts.

// The test: 100 kills of the listener's backend while a notifyProducer
// sends numbered notifications on three channels. Each time, every channel
// is listened to again within 2 s, each handler gets one gap, and no number
// the notifyProducer committed is lost outside a gap.
func TestListenerSurvivesBackendKills(t *testing.T) {
	const (
		kills    = 100
		afterGap = 30 // notifications per channel between a recovery and the next kill
	)
	channels := []string{"orders", "Mixed Case", `quote"d`}
	cfg := pg.Database(t)
	log, logs := observed()
	rec := newNotifLog()
	var l *dbmodule.Listener
	app := fxtest.New(t,
		dbmodule.ListenerModule,
		fx.Supply(cfg, log),
		fx.Populate(&l),
		// Two channels subscribed before start, the third after.
		fx.Invoke(func(n dbmodule.Notifications) error {
			for _, ch := range channels[:2] {
				if _, err := n.Listen(context.Background(), ch, rec.handler()); err != nil {
					return err
				}
			}
			return nil
		}),
	)
	app.RequireStart()
	defer app.RequireStop()
	ctx := context.Background()
	if _, err := l.Listen(ctx, channels[2], rec.handler()); err != nil {
		t.Fatal(err)
	}
	admin := dialConn(t, pg.URL(t))
	var query string
	if err := admin.QueryRow(ctx, "SELECT query FROM pg_stat_activity WHERE pid = $1", l.BackendPID()).Scan(&query); err != nil || !strings.HasPrefix(query, "LISTEN") {
		t.Fatalf("backend %d runs %q (%v); want the listener's LISTEN", l.BackendPID(), query, err)
	}

	start := time.Now()
	prod := startNotifyProducer(t, cfg.URL, channels)
	var relisten, resume []time.Duration
	for i := range kills {
		pid := l.BackendPID()
		before := map[string]int{}
		for _, ch := range channels {
			before[ch] = len(rec.of(ch))
			if g := rec.gaps(ch); g != i {
				t.Fatalf("kill %d: %s has %d gaps, want %d", i, ch, g, i)
			}
		}
		killed := time.Now()
		var ok bool
		if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend($1)", int64(pid)).Scan(&ok); err != nil || !ok {
			t.Fatalf("kill %d: terminate backend %d: %v %v", i, pid, ok, err)
		}
		// Listening again: each channel's gap (queued once its LISTEN is back)
		// and then notifications sent after it: enough of them that the new
		// connection outlives the reconnect pacing, so that the next kill
		// measures a reconnection, not the pacing (TestListenerPacesReconnects).
		var worstGap, worstNext time.Duration
		for _, ch := range channels {
			var gapAt, nextAt time.Time
			dbtest.WaitFor(t, fmt.Sprintf("kill %d: gap then notifications on %s", i, ch), func() bool {
				events := rec.of(ch)[before[ch]:]
				j := slices.IndexFunc(events, func(e heard) bool { return e.gap })
				if j < 0 || len(events) < j+1+afterGap {
					return false
				}
				gapAt, nextAt = events[j].at, events[j+1].at
				return true
			})
			worstGap, worstNext = max(worstGap, gapAt.Sub(killed)), max(worstNext, nextAt.Sub(killed))
		}
		relisten, resume = append(relisten, worstGap), append(resume, worstNext)
		if l.BackendPID() == pid {
			t.Fatalf("kill %d: still on backend %d", i, pid)
		}
	}
	last := prod.halt(t)
	for _, ch := range channels {
		dbtest.WaitFor(t, "the last notification on "+ch, func() bool { return rec.has(ch, strconv.FormatInt(last, 10)) })
	}
	var missed int64
	for _, ch := range channels {
		if g := rec.gaps(ch); g != kills {
			t.Errorf("%s: %d gaps for %d losses", ch, g, kills)
		}
		missed += checkNotifySequence(t, ch, rec.of(ch), last)
	}
	if n := logs.FilterMessage("database listener lost its connection; reconnecting").Len(); n != kills {
		t.Errorf("%d loss log lines for %d losses", n, kills)
	}
	if n := logs.FilterMessage("database listener reconnected").Len(); n != kills {
		t.Errorf("%d recovery log lines for %d losses", n, kills)
	}
	retried := 0
	for _, e := range logs.FilterMessage("database listener reconnected").All() {
		if e.ContextMap()["attempts"] != int64(1) {
			retried++
		}
	}
	if worst := slices.Max(relisten); worst > 2*time.Second {
		t.Errorf("a channel took %s to be listened to again; want under 2s", worst)
	}
	t.Logf("%d kills in %s, %d notifications on each of %d channels, %d (%.1f%%) fell in reported gaps",
		kills, time.Since(start).Round(time.Millisecond), last, len(channels), missed, 100*float64(missed)/float64(last*int64(len(channels))))
	t.Logf("%d of %d reconnections needed more than one attempt", retried, kills)
	t.Logf("kill to every channel listened again (gap reported): median %s, p95 %s, max %s",
		durationPercentile(relisten, 50), durationPercentile(relisten, 95), slices.Max(relisten))
	t.Logf("kill to a new notification on every channel: median %s, p95 %s, max %s",
		durationPercentile(resume, 50), durationPercentile(resume, 95), slices.Max(resume))
	assertNoSecret(t, logs, cfg.URL)
}

// A restart (fast shutdown, then a crash) of the server itself: the listener
// reconnects with backoff once the server is back, and reports the gap.
// Listen while the server is down waits for it, or for its context.
func TestListenerSurvivesServerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		if os.Getenv("TEST_DATABASE_URL") != "" {
			t.Skipf("restarting needs a server of this test's own: %v", err)
		}
		t.Fatal(err)
	}
	defer srv.Close()
	rawURL := srv.URL("postgres")
	log, logs := observed()
	l, err := dbmodule.OpenListener(ctx, config.DB{URL: rawURL}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	rec := newNotifLog()
	if _, err := l.Listen(ctx, "jobs", rec.handler()); err != nil {
		t.Fatal(err)
	}
	sendNotify(t, rawURL, "jobs", "1")
	dbtest.WaitFor(t, "notification 1", func() bool { return rec.has("jobs", "1") })

	// Fast shutdown and start.
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	dbtest.WaitFor(t, "a gap after the restart", func() bool { return rec.gaps("jobs") == 1 })
	afterRestart := nthGapTime(rec.of("jobs"), 1).Sub(up)
	sendNotify(t, rawURL, "jobs", "2")
	dbtest.WaitFor(t, "notification 2", func() bool { return rec.has("jobs", "2") })

	// A crash; Listen during the outage.
	srv.Kill()
	dbtest.WaitFor(t, "the loss noticed", func() bool { return l.BackendPID() == 0 })
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = l.Listen(short, "early", rec.handler())
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Listen during an outage, past its deadline = %v; want DeadlineExceeded", err)
	}
	late := make(chan error, 1)
	go func() {
		_, err := l.Listen(ctx, "late", rec.handler())
		late <- err
	}()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	up = time.Now()
	if err := <-late; err != nil {
		t.Fatalf("Listen waiting through the outage: %v", err)
	}
	dbtest.WaitFor(t, "a gap after the crash", func() bool { return rec.gaps("jobs") == 2 })
	afterCrash := nthGapTime(rec.of("jobs"), 2).Sub(up)
	sendNotify(t, rawURL, "jobs", "3")
	sendNotify(t, rawURL, "late", "1")
	sendNotify(t, rawURL, "early", "1")
	dbtest.WaitFor(t, "notifications after the crash", func() bool { return rec.has("jobs", "3") && rec.has("late", "1") })
	if g := rec.gaps("late"); g != 0 {
		t.Errorf("a subscription made during the outage got %d gaps; its Listen returned after the LISTEN", g)
	}
	if e := rec.of("early"); len(e) != 0 {
		t.Errorf("the subscription whose Listen failed got %v", e)
	}
	if n := logs.FilterMessage("database listener reconnected").Len(); n != 2 {
		t.Errorf("%d recovery log lines, want 2", n)
	}
	for _, e := range logs.FilterMessage("database listener reconnected").All() {
		t.Logf("reconnected: outage %v, attempts %v", e.ContextMap()["outage"], e.ContextMap()["attempts"])
	}
	t.Logf("server accepting connections to gap reported: after a restart %s, after a crash %s", afterRestart, afterCrash)
	for _, d := range []time.Duration{afterRestart, afterCrash} {
		if d > 6*time.Second { // the longest backoff step (5 s) and a connect
			t.Errorf("listening again %s after the server came back", d)
		}
	}
	assertNoSecret(t, logs, rawURL)
}

// Kills that follow each other as fast as the listener recovers: its
// connection attempts stay at least 50 ms apart, as the server sees them.
func TestListenerPacesReconnects(t *testing.T) {
	const kills = 10
	cfg := pg.Database(t)
	ctx := context.Background()
	l, err := dbmodule.OpenListener(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	rec := newNotifLog()
	if _, err := l.Listen(ctx, "paced", rec.handler()); err != nil {
		t.Fatal(err)
	}
	admin := dialConn(t, pg.URL(t))
	var starts []time.Time
	for i := range kills + 1 {
		pid := l.BackendPID()
		var started time.Time
		if err := admin.QueryRow(ctx, "SELECT backend_start FROM pg_stat_activity WHERE pid = $1", int64(pid)).Scan(&started); err != nil {
			t.Fatalf("backend %d: %v", pid, err)
		}
		starts = append(starts, started)
		if i == kills {
			break
		}
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", int64(pid)); err != nil {
			t.Fatal(err)
		}
		dbtest.WaitFor(t, "a new backend", func() bool { return rec.gaps("paced") == i+1 })
	}
	var gaps []time.Duration
	for i := 1; i < len(starts); i++ {
		gaps = append(gaps, starts[i].Sub(starts[i-1]))
	}
	t.Logf("backend starts %s apart at least, median %s", slices.Min(gaps), durationPercentile(gaps, 50))
	// 50 ms between dials; the server's clock sees them later by a varying
	// connect latency, hence the margin.
	if least := slices.Min(gaps); least < 35*time.Millisecond {
		t.Errorf("two connections %s apart; want about 50ms at least", least)
	}
}
