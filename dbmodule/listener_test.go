package dbmodule_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/internal/pgtemp"
)

// heard is what a handler saw: a notification's payload, or a gap.
type heard struct {
	payload string
	gap     bool
	at      time.Time
}

// notifLog records what its handlers see, per channel.
type notifLog struct {
	mu     sync.Mutex
	events map[string][]heard
}

func newNotifLog() *notifLog { return &notifLog{events: map[string][]heard{}} }

func (r *notifLog) handler() dbmodule.Handler {
	return dbmodule.HandlerFuncs{
		Notification: func(_ context.Context, n *pgconn.Notification) { r.add(n.Channel, heard{payload: n.Payload}) },
		Gap:          func(_ context.Context, channel string) { r.add(channel, heard{gap: true}) },
	}
}

func (r *notifLog) add(channel string, e heard) {
	e.at = time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events[channel] = append(r.events[channel], e)
}

func (r *notifLog) of(channel string) []heard {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events[channel])
}

func (r *notifLog) gaps(channel string) int {
	n := 0
	for _, e := range r.of(channel) {
		if e.gap {
			n++
		}
	}
	return n
}

func (r *notifLog) has(channel, payload string) bool {
	return slices.ContainsFunc(r.of(channel), func(e heard) bool { return !e.gap && e.payload == payload })
}

// sendNotify sends a notification from a connection of its own.
func sendNotify(t *testing.T, rawURL, channel, payload string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload); err != nil {
		t.Fatal(err)
	}
}

func dialConn(t *testing.T, rawURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// notifyProducer sends numbered notifications, 1, 2, 3, ..., one statement (and
// so one transaction) for all its channels, and counts those committed.
type notifyProducer struct {
	committed atomic.Int64
	stop      atomic.Bool
	done      chan error
}

func startNotifyProducer(t *testing.T, rawURL string, channels []string) *notifyProducer {
	t.Helper()
	conn := dialConn(t, rawURL)
	var sql strings.Builder
	sql.WriteString("SELECT ")
	for i := range channels {
		if i > 0 {
			sql.WriteString(", ")
		}
		fmt.Fprintf(&sql, "pg_notify($%d, $%d)", i+1, len(channels)+1)
	}
	p := &notifyProducer{done: make(chan error, 1)}
	go func() {
		tick := time.NewTicker(2 * time.Millisecond) // a steady stream, not a flood
		defer tick.Stop()
		for seq := int64(1); !p.stop.Load(); seq++ {
			args := make([]any, 0, len(channels)+1)
			for _, ch := range channels {
				args = append(args, ch)
			}
			args = append(args, strconv.FormatInt(seq, 10))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := conn.Exec(ctx, sql.String(), args...)
			cancel()
			if err != nil {
				p.done <- fmt.Errorf("notifyProducer at %d: %w", seq, err)
				return
			}
			p.committed.Store(seq)
			<-tick.C
		}
		p.done <- nil
	}()
	t.Cleanup(func() { p.halt(t) })
	return p
}

// halt stops the notifyProducer and returns the last number it committed.
func (p *notifyProducer) halt(t *testing.T) int64 {
	t.Helper()
	if p.stop.Swap(true) {
		return p.committed.Load()
	}
	if err := <-p.done; err != nil {
		t.Error(err)
	}
	return p.committed.Load()
}

// checkNotifySequence fails unless channel's events hold every number from 1 to
// last, in order, each once, except numbers between two deliveries that a
// gap separates. It returns how many numbers the gaps covered.
func checkNotifySequence(t *testing.T, channel string, events []heard, last int64) (missed int64) {
	t.Helper()
	var prev int64
	gap := false
	for _, e := range events {
		if e.gap {
			gap = true
			continue
		}
		n, err := strconv.ParseInt(e.payload, 10, 64)
		if err != nil {
			t.Fatalf("%s: payload %q", channel, e.payload)
		}
		switch {
		case n <= prev:
			t.Errorf("%s: %d after %d: repeated or out of order", channel, n, prev)
		case n > prev+1 && !gap:
			t.Errorf("%s: %d to %d lost with no gap reported", channel, prev+1, n-1)
		case n > prev+1:
			missed += n - prev - 1
		}
		prev, gap = n, false
	}
	if prev != last {
		t.Errorf("%s: last delivered %d, last committed %d", channel, prev, last)
	}
	return missed
}

func durationPercentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// The issue's test: 100 kills of the listener's backend while a notifyProducer
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

// nthGapTime is when the nth gap (from 1) was handled.
func nthGapTime(events []heard, nth int) time.Time {
	for _, e := range events {
		if e.gap {
			if nth--; nth == 0 {
				return e.at
			}
		}
	}
	return time.Time{}
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

// Subscriptions before and after start, several handlers on a channel,
// unlisten, and names that need quoting.
func TestListenerSubscriptions(t *testing.T) {
	cfg := pg.Database(t)
	ctx := context.Background()
	l, err := dbmodule.OpenListener(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	a, b := newNotifLog(), newNotifLog()
	unA, err := l.Listen(ctx, "Shared Channel", a.handler())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Listen(ctx, "Shared Channel", b.handler()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Listen(ctx, `it's "odd"; DROP TABLE x`, b.handler()); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		sendNotify(t, cfg.URL, "Shared Channel", strconv.Itoa(i+1))
	}
	sendNotify(t, cfg.URL, "shared channel", "folded") // another channel
	sendNotify(t, cfg.URL, `it's "odd"; DROP TABLE x`, "odd")
	dbtest.WaitFor(t, "five notifications to both handlers", func() bool {
		return len(a.of("Shared Channel")) == 5 && len(b.of("Shared Channel")) == 5 && b.has(`it's "odd"; DROP TABLE x`, "odd")
	})
	checkNotifySequence(t, "Shared Channel", a.of("Shared Channel"), 5)
	checkNotifySequence(t, "Shared Channel", b.of("Shared Channel"), 5)

	unA()
	unA() // twice is harmless
	sendNotify(t, cfg.URL, "Shared Channel", "6")
	dbtest.WaitFor(t, "the remaining handler's notification", func() bool { return b.has("Shared Channel", "6") })
	if a.has("Shared Channel", "6") {
		t.Error("a handler got a notification after its unlisten")
	}
	if len(a.of("shared channel")) != 0 || len(b.of("shared channel")) != 0 {
		t.Error("a notification on a channel nobody listens to was delivered")
	}
}

func TestListenRefusesBadArguments(t *testing.T) {
	ctx := context.Background()
	l, err := dbmodule.OpenListener(ctx, pg.Database(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newNotifLog().handler()
	for _, c := range []struct {
		channel string
		h       dbmodule.Handler
		want    string
	}{
		{"", h, "channel is empty"},
		{strings.Repeat("x", 64), h, "64 bytes long"},
		{"a\x00b", h, "NUL"},
		{"ok", nil, "handler is nil"},
	} {
		if _, err := l.Listen(ctx, c.channel, c.h); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Listen(%q) = %v; want an error saying %q", c.channel, err, c.want)
		}
	}
	if _, err := l.Listen(ctx, strings.Repeat("x", 63), h); err != nil {
		t.Errorf("a 63-byte channel: %v", err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Listen(ctx, "late", h); !errors.Is(err, dbmodule.ErrListenerClosed) {
		t.Errorf("Listen after Close = %v; want ErrListenerClosed", err)
	}
}

// A slow handler does not stall the connection: beyond its
// MaxPendingNotifications it gets a gap, while other handlers carry on.
func TestSlowHandlerGetsAGap(t *testing.T) {
	cfg := pg.Database(t)
	ctx := context.Background()
	log, logs := observed()
	l, err := dbmodule.OpenListener(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	rec := newNotifLog()
	release := make(chan struct{})
	var once sync.Once
	slow := dbmodule.HandlerFuncs{
		Notification: func(ctx context.Context, n *pgconn.Notification) {
			once.Do(func() { <-release })
			rec.add(n.Channel, heard{payload: n.Payload})
		},
		Gap: func(_ context.Context, ch string) { rec.add(ch, heard{gap: true}) },
	}
	if _, err := l.Listen(ctx, "slow", slow); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Listen(ctx, "fast", rec.handler()); err != nil {
		t.Fatal(err)
	}
	const sent = 3 * dbmodule.MaxPendingNotifications
	conn := dialConn(t, cfg.URL)
	if _, err := conn.Exec(ctx, "SELECT pg_notify('slow', g::text) FROM generate_series(1, $1) g", sent); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_notify('fast', 'after')"); err != nil {
		t.Fatal(err)
	}
	// The fast handler's notification came after all of the slow one's.
	dbtest.WaitFor(t, "the fast handler, while the slow one is stuck", func() bool { return rec.has("fast", "after") })
	close(release)
	// One being handled, MaxPendingNotifications waiting, then the gap.
	kept := int64(dbmodule.MaxPendingNotifications + 1)
	dbtest.WaitFor(t, "the slow handler's backlog and gap", func() bool { return rec.gaps("slow") == 1 })
	if _, err := conn.Exec(ctx, "SELECT pg_notify('slow', $1)", strconv.Itoa(sent+1)); err != nil {
		t.Fatal(err)
	}
	dbtest.WaitFor(t, "a notification after the gap", func() bool { return rec.has("slow", strconv.Itoa(sent+1)) })
	events := rec.of("slow")
	if len(events) != int(kept)+2 || !events[kept].gap {
		t.Fatalf("slow handler saw %d events, gap at %d; want %d notifications, a gap, one more", len(events), slices.IndexFunc(events, func(e heard) bool { return e.gap }), kept)
	}
	if missed := checkNotifySequence(t, "slow", events, sent+1); missed != sent-kept {
		t.Errorf("%d notifications in the gap, want %d", missed, sent-kept)
	}
	if n := logs.FilterMessage("database listener dropped notifications: a handler is too slow; it gets a gap").Len(); n != 1 {
		t.Errorf("%d log lines for one overflow", n)
	}
}

// blackhole is a TCP proxy whose connections can be made to swallow
// everything, like a network that stops answering without closing.
type blackhole struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	links  []*holeLink
	wg     sync.WaitGroup
}

type holeLink struct {
	client, server net.Conn
	dead           atomic.Bool
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, target: target}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			k := &holeLink{client: c, server: s}
			b.mu.Lock()
			b.links = append(b.links, k)
			b.mu.Unlock()
			b.wg.Add(2)
			go k.pipe(&b.wg, c, s)
			go k.pipe(&b.wg, s, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, k := range b.links {
			k.client.Close()
			k.server.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

// pipe copies src to dst, dropping everything once the link is dead.
func (k *holeLink) pipe(wg *sync.WaitGroup, src, dst net.Conn) {
	defer wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !k.dead.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, or closed by the other side's pipe or the cleanup
		}
	}
}

// silence makes every current connection swallow everything.
func (b *blackhole) silence() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range b.links {
		k.dead.Store(true)
	}
}

// A connection that goes silent (no reset, no FIN) is found out by the
// ping after a quiet health-check period, and replaced.
func TestListenerPingsAQuietConnection(t *testing.T) {
	cfg := pg.Database(t)
	u, err := url.Parse(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	hole := newBlackhole(t, u.Host)
	u.Host = hole.ln.Addr().String()
	cfg.URL = u.String()
	cfg.HealthCheckPeriod = 200 * time.Millisecond
	cfg.PingTimeout = 200 * time.Millisecond
	ctx := context.Background()
	log, logs := observed()
	l, err := dbmodule.OpenListener(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	rec := newNotifLog()
	if _, err := l.Listen(ctx, "quiet", rec.handler()); err != nil {
		t.Fatal(err)
	}
	hole.silence()
	silenced := time.Now()
	dbtest.WaitFor(t, "a gap after the silence", func() bool { return rec.gaps("quiet") == 1 })
	found := rec.of("quiet")[0].at.Sub(silenced)
	sendNotify(t, cfg.URL, "quiet", "back")
	dbtest.WaitFor(t, "a notification on the new connection", func() bool { return rec.has("quiet", "back") })
	lost := logs.FilterMessage("database listener lost its connection; reconnecting").All()
	if len(lost) != 1 || !strings.Contains(fmt.Sprint(lost[0].ContextMap()["error"]), "ping after") {
		t.Errorf("loss log lines: %v", lost)
	}
	t.Logf("silent connection replaced, gap reported, %s after the network went quiet (health-check period 200ms, ping timeout 200ms)", found)
	if found > 3*time.Second {
		t.Errorf("a silent connection took %s to be replaced", found)
	}
}

// Start fails, within the connect timeout, when the database cannot be
// reached, naming where and which variable, never the password.
func TestListenerStartFailsWhenUnreachable(t *testing.T) {
	const password = "p@ss:w/o%rd ü?#x"
	for _, c := range []struct {
		name, addr string
	}{
		{"refused", dbtest.ClosedAddr(t)},
		{"silent", dbtest.SilentAddr(t)},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := (&url.URL{Scheme: "postgres", User: url.UserPassword("app", password), Host: c.addr, Path: "/db", RawQuery: "sslmode=disable"}).String()
			log, logs := observed()
			app := fx.New(
				dbmodule.ListenerModule,
				fx.Supply(config.DB{DirectURL: raw, URL: "postgres://pooler.invalid/db", ConnectTimeout: 300 * time.Millisecond}, log),
				fx.Invoke(func(dbmodule.Notifications) {}),
				fx.NopLogger,
			)
			begin := time.Now()
			err := app.Start(context.Background())
			took := time.Since(begin)
			if err == nil {
				app.Stop(context.Background()) //nolint:errcheck
				t.Fatal("start succeeded with no database")
			}
			if took > 2*time.Second {
				t.Errorf("start failed after %s; want about the connect timeout (300ms)", took)
			}
			msg := err.Error()
			for _, want := range []string{c.addr, "DIRECT_URL"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not name %q", msg, want)
				}
			}
			for _, secret := range []string{password, url.UserPassword("app", password).String()} {
				if strings.Contains(msg, secret) {
					t.Errorf("error carries the password: %q", msg)
				}
			}
			assertNoSecret(t, logs, raw)
		})
	}
}

// With an awkward password: connecting, losing the connection, recovering
// and stopping log nothing that holds it.
func TestListenerLogsNoPassword(t *testing.T) {
	const password = "p@ss:w/o%rd ü?#x 'q'"
	ctx := context.Background()
	admin := dialConn(t, pg.URL(t))
	role := fmt.Sprintf("listener_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pgx.Identifier{role}.Sanitize(), strings.ReplaceAll(password, "'", "''"))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role) //nolint:errcheck
		admin.Exec(ctx, "DROP ROLE "+pgx.Identifier{role}.Sanitize())                                      //nolint:errcheck
	})
	base, _ := url.Parse(pg.URL(t))
	base.User = url.UserPassword(role, password)
	raw := base.String()
	log, logs := observed()
	l, err := dbmodule.OpenListener(ctx, config.DB{URL: raw}, log)
	if err != nil {
		t.Fatal(err)
	}
	rec := newNotifLog()
	if _, err := l.Listen(ctx, "secret", rec.handler()); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", int64(l.BackendPID())); err != nil {
		t.Fatal(err)
	}
	dbtest.WaitFor(t, "the gap", func() bool { return rec.gaps("secret") == 1 })
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if logs.Len() < 4 {
		t.Errorf("want start, loss, recovery and stop logged; got %d lines", logs.Len())
	}
	assertNoSecret(t, logs, raw)
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), url.QueryEscape(password)) {
			t.Errorf("log entry %q carries the encoded password", e.Message)
		}
	}
}

// Stop returns within its context even when a handler never returns; the
// handler's context has ended by then.
func TestListenerStopIsBoundedByItsContext(t *testing.T) {
	cfg := pg.Database(t)
	ctx := context.Background()
	l, err := dbmodule.OpenListener(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var handlerCtx context.Context
	stuck := dbmodule.HandlerFuncs{Notification: func(ctx context.Context, _ *pgconn.Notification) {
		handlerCtx = ctx
		close(entered)
		<-release // ignores ctx, as a badly written handler would
	}}
	if _, err := l.Listen(ctx, "stuck", stuck); err != nil {
		t.Fatal(err)
	}
	sendNotify(t, cfg.URL, "stuck", "x")
	<-entered
	stopCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err = l.Close(stopCtx)
	took := time.Since(begin)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"stuck"`) {
		t.Errorf("Close with a stuck handler = %v; want a deadline error naming its channel", err)
	}
	if took > time.Second {
		t.Errorf("Close took %s with a 200ms context", took)
	}
	if handlerCtx.Err() == nil {
		t.Error("the handler's context did not end at Close")
	}
	close(release)
	if err := l.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// ListenerModule builds a Listener only for an app that asks for one: with
// the module but no subscriber, nothing connects.
func TestListenerModuleConnectsOnlyWhenAsked(t *testing.T) {
	log, logs := observed()
	app := fxtest.New(t, dbmodule.Module, dbmodule.ListenerModule, pg.Module(t), fx.Supply(log),
		fx.Invoke(func(dbmodule.Querier) {}))
	app.RequireStart()
	app.RequireStop()
	if n := logs.FilterMessageSnippet("listener").Len(); n != 0 {
		t.Errorf("an app that does not listen logged %d listener lines", n)
	}
}

// With Module, the pool starts first and stops last, so that handlers can
// use it whenever they run.
func TestListenerStartsAfterThePool(t *testing.T) {
	log, logs := observed()
	app := fxtest.New(t, dbmodule.Module, dbmodule.ListenerModule, pg.Module(t), fx.Supply(log),
		// fx builds these in order: the listener first, unless it asks for the pool.
		fx.Invoke(func(dbmodule.Notifications, dbmodule.Querier) {}))
	app.RequireStart()
	app.RequireStop()
	var order []string
	for _, e := range logs.All() {
		if strings.HasPrefix(e.Message, "database pool") || strings.HasPrefix(e.Message, "database listener") {
			order = append(order, e.Message)
		}
	}
	want := []string{"database pool opened", "database listener started", "database listener stopped", "database pool closed"}
	if !slices.Equal(order, want) {
		t.Errorf("lifecycle logged %q; want %q", order, want)
	}
}

// fakeNotifications hands its handlers only what a test sends it.
type fakeNotifications struct{ handlers map[string]dbmodule.Handler }

func (f *fakeNotifications) Listen(_ context.Context, channel string, h dbmodule.Handler) (func(), error) {
	f.handlers[channel] = h
	return func() { delete(f.handlers, channel) }, nil
}

func (f *fakeNotifications) send(channel, payload string) {
	f.handlers[channel].HandleNotification(context.Background(), &pgconn.Notification{Channel: channel, Payload: payload})
}

// exampleCache is an app component that drops the entries notifications
// name, and everything after a gap.
type exampleCache struct{ entries map[string]string }

func newExampleCache(n dbmodule.Notifications) (*exampleCache, error) {
	c := &exampleCache{entries: map[string]string{"user:42": "Ada", "user:7": "Grace"}}
	_, err := n.Listen(context.Background(), "cache_invalidations", dbmodule.HandlerFuncs{
		Notification: func(_ context.Context, n *pgconn.Notification) { delete(c.entries, n.Payload) },
		Gap:          func(context.Context, string) { clear(c.entries) },
	})
	return c, err
}

// Replacing Notifications runs an app's listeners with no database: the
// test plays the server. Annotate the fake with fx.As, or fx.Replace would
// replace a *fakeNotifications that nothing asks for.
func Example_fakeNotifications() {
	fake := &fakeNotifications{handlers: map[string]dbmodule.Handler{}}
	var c *exampleCache
	app := fx.New(
		dbmodule.ListenerModule,
		fx.Replace(fx.Annotate(fake, fx.As(new(dbmodule.Notifications)))),
		fx.Provide(newExampleCache),
		fx.Populate(&c),
		fx.NopLogger,
	)
	fmt.Println(app.Err())
	fake.send("cache_invalidations", "user:42")
	fmt.Println(len(c.entries), c.entries["user:7"])
	fake.handlers["cache_invalidations"].HandleGap(context.Background(), "cache_invalidations")
	fmt.Println(len(c.entries))
	// Output:
	// <nil>
	// 1 Grace
	// 0
}

// OpenListener and Close without fx.
func ExampleOpenListener() {
	ctx := context.Background()
	l, err := dbmodule.OpenListener(ctx, config.DB{URL: databaseURL()}, zap.NewNop())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close(ctx)
	got := make(chan string, 1)
	_, err = l.Listen(ctx, "greetings", dbmodule.HandlerFuncs{
		Notification: func(_ context.Context, n *pgconn.Notification) { got <- n.Payload },
		Gap:          func(context.Context, string) { fmt.Println("resynchronise") },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, err := pgx.Connect(ctx, databaseURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_notify('greetings', 'hello')"); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-got)
	// Output: hello
}
