package dbmodule_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// This file tests delivery to handlers: a slow one gets a gap, not a stall.

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
