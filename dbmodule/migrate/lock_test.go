package migrate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/dbmodule/migrate"
)

// migratorBackends counts the migrators' sessions in the database, those
// waiting for a lock of kind waitEvent ("advisory", "relation") if set.
func migratorBackends(t *testing.T, conn *pgx.Conn, waitEvent string) int {
	t.Helper()
	var n int
	err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
	WHERE datname = current_database() AND application_name = 'migrate' AND ($1 = '' OR (wait_event_type = 'Lock' AND wait_event = $1))`,
		waitEvent).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// await returns what errc delivers, failing the test if nothing comes in
// a minute.
func await(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(time.Minute):
		t.Fatal("Up did not return within a minute of its context's end")
		return nil
	}
}

// The lock is goose's: a session holding pg_advisory_lock(4097083626), as
// goose's session locker does, makes Up wait; cancelling the wait returns
// at once, and leaves no session of the migrator waiting on the server.
func TestCancelWhileWaitingForTheLock(t *testing.T) {
	t.Parallel()
	if migrate.LockKey != 4097083626 {
		t.Fatalf("LockKey = %d, not goose's", migrate.LockKey)
	}
	db := pg.Database(t)
	holder := connect(t, db.URL)
	if _, err := holder.Exec(context.Background(), "SELECT pg_advisory_lock(4097083626)"); err != nil {
		t.Fatal(err)
	}
	m := newMigrator(t, db, fstest.MapFS{"00001_a.sql": {Data: []byte("-- +goose Up\nCREATE TABLE a (id int);\n")}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := m.Up(ctx)
		errc <- err
	}()
	watch := connect(t, db.URL)
	dbtest.WaitFor(t, "the migrator to wait for the advisory lock", func() bool { return migratorBackends(t, watch, "advisory") == 1 })
	cancel()
	err := await(t, errc)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "wait for the migration lock") {
		t.Errorf("Up = %v, want context.Canceled while waiting for the lock", err)
	}
	dbtest.WaitFor(t, "the migrator's session to end", func() bool { return migratorBackends(t, watch, "") == 0 })

	if _, err := holder.Exec(context.Background(), "SELECT pg_advisory_unlock(4097083626)"); err != nil {
		t.Fatal(err)
	}
	if applied, err := m.Up(context.Background()); err != nil || len(applied) != 1 {
		t.Errorf("Up once the lock is free = %+v, %v", applied, err)
	}
}

// A context that ends while a migration runs cancels the statement on the
// server: the migration rolls back and the lock is free at once, so that
// another migrator proceeds even while the first one's statement would
// still be blocked. (Cutting the connection alone would leave the server
// running the statement, holding the lock.)
func TestCancelMidMigrationReleasesTheLock(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	gate := connect(t, db.URL)
	ctx := context.Background()
	if _, err := gate.Exec(ctx, "CREATE TABLE gate (id int)"); err != nil {
		t.Fatal(err)
	}
	tx, err := gate.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the test is over
	if _, err := tx.Exec(ctx, "LOCK TABLE gate IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	m := newMigrator(t, db, fstest.MapFS{
		"00001_blocked.sql": {Data: []byte("-- +goose Up\nCREATE TABLE before_gate (id int);\nSELECT * FROM gate;\n")},
	})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := m.Up(runCtx)
		errc <- err
	}()
	watch := connect(t, db.URL)
	dbtest.WaitFor(t, "the migration to block on the gate", func() bool { return migratorBackends(t, watch, "relation") == 1 })
	cancel()
	err = await(t, errc)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "00001_blocked.sql") {
		t.Errorf("Up = %v, want the migration cancelled", err)
	}

	// The gate is still locked, yet another migrator takes the lock.
	other := newMigrator(t, db, fstest.MapFS{"00001_other.sql": {Data: []byte("-- +goose Up\nCREATE TABLE other (id int);\n")}})
	otherCtx, cancelOther := context.WithTimeout(ctx, 30*time.Second)
	defer cancelOther()
	if applied, err := other.Up(otherCtx); err != nil || len(applied) != 1 {
		t.Fatalf("second migrator's Up = %+v, %v; the first left the lock held", applied, err)
	}
	if got := tables(t, db.URL); got != "gate,other" {
		t.Errorf("tables = %s; the cancelled migration left something", got)
	}
}

// A context done before Up starts fails it without touching the database.
func TestDoneContext(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := newMigrator(t, db, fstest.MapFS{"00001_a.sql": {Data: []byte("-- +goose Up\nCREATE TABLE a (id int);\n")}})
	if _, err := m.Up(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Up = %v, want context.Canceled", err)
	}
	if got := tables(t, db.URL); got != "" {
		t.Errorf("tables = %s", got)
	}
}
