package dbmodule_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// This file holds the helpers the Listener's tests share (a handler that
// records what it hears, senders of notifications, checks of what arrived)
// and the tests of Listen itself.

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
