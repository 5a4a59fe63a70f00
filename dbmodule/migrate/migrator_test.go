package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/dbmodule/migrate"
	"github.com/fxpg/fxpg/store"
)

func TestUpStatusDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pg.Database(t)
	m := newMigrator(t, db, store.Migrations())

	if pending, err := m.Pending(ctx); err != nil || !pending {
		t.Fatalf("Pending on an empty database = %v, %v", pending, err)
	}
	if v, err := m.Version(ctx); err != nil || v != 0 {
		t.Errorf("Version of an empty database = %d, %v", v, err)
	}
	before := time.Now()
	applied, err := m.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 2 || applied[0].Version != 1 || applied[0].File != "00001_customers_products.sql" || applied[1].Version != 2 {
		t.Fatalf("Up applied %+v, want versions 1 and 2", applied)
	}
	if got := tables(t, db.URL); got != "customers,orders,products" {
		t.Errorf("tables after Up = %s", got)
	}
	conn := connect(t, db.URL)
	if got := versionRows(t, conn); got != "0:true 1:true 2:true" {
		t.Errorf("version rows = %s; want goose's zero row, then one per migration", got)
	}
	statuses, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(statuses) != 2 {
		t.Fatalf("Status = %+v", statuses)
	}
	for _, s := range statuses {
		if s.State != migrate.StateApplied || s.AppliedAt.IsZero() {
			t.Errorf("status of %s = %s at %v", s.File, s.State, s.AppliedAt)
		}
	}
	// tstamp has no zone; AppliedAt is the instant the row was written.
	for _, s := range statuses {
		if s.AppliedAt.Before(before.Add(-time.Second)) || s.AppliedAt.After(time.Now().Add(time.Second)) {
			t.Errorf("%s applied at %v, not during Up (from %v)", s.File, s.AppliedAt, before)
		}
	}
	if pending, err := m.Pending(ctx); err != nil || pending {
		t.Errorf("Pending after Up = %v, %v", pending, err)
	}
	if again, err := m.Up(ctx); err != nil || len(again) != 0 {
		t.Errorf("second Up = %v, %v; want nothing to do", again, err)
	}

	r, err := m.Down(ctx)
	if err != nil || r.Version != 2 || r.File != "00002_orders.sql" {
		t.Fatalf("Down = %+v, %v; want version 2 rolled back", r, err)
	}
	if v, err := m.Version(ctx); err != nil || v != 1 {
		t.Errorf("Version after Down = %d, %v; want 1", v, err)
	}
	if got := tables(t, db.URL); got != "customers,products" {
		t.Errorf("tables after Down = %s", got)
	}
	if got := versionRows(t, conn); got != "0:true 1:true" {
		t.Errorf("version rows after Down = %s; goose deletes the row of a rolled-back version", got)
	}
	if _, err := m.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Down(ctx); !errors.Is(err, migrate.ErrNothingToRollBack) {
		t.Errorf("Down with nothing applied = %v, want ErrNothingToRollBack", err)
	}
}

// The version table is goose's, column for column.
func TestVersionTableIsGooses(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	if _, err := newMigrator(t, db, store.Migrations()).Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, _ := connect(t, db.URL).Query(context.Background(), `SELECT column_name || ' ' || data_type || ' ' || is_nullable || ' ' ||
	coalesce(column_default, '') || coalesce(identity_generation, '')
	FROM information_schema.columns WHERE table_name = 'goose_db_version' ORDER BY ordinal_position`)
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	want := "id integer NO BY DEFAULT|version_id bigint NO |is_applied boolean NO |tstamp timestamp without time zone NO now()"
	if got := strings.Join(cols, "|"); got != want {
		t.Errorf("columns\n got %s\nwant %s", got, want)
	}
}

// Status and Version only read: checking a database never migrated leaves
// it as it was, which also lets them run on a read-only standby.
func TestStatusWritesNothing(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	m := newMigrator(t, db, store.Migrations())
	statuses, err := m.Status(context.Background())
	if err != nil || len(statuses) != 2 || statuses[0].State != migrate.StatePending || statuses[1].State != migrate.StatePending {
		t.Fatalf("Status = %+v, %v", statuses, err)
	}
	var exists bool
	if err := connect(t, db.URL).QueryRow(context.Background(), "SELECT to_regclass('goose_db_version') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Errorf("version table exists after Status: %v, %v", exists, err)
	}
}

// Replicas of an app that start together each run Up: every migration is
// applied exactly once, and none of them fails.
func TestConcurrentMigratorsApplyEachMigrationOnce(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	const replicas = 8
	results := make([][]migrate.Result, replicas)
	errs := make([]error, replicas)
	migrators := make([]*migrate.Migrator, replicas)
	for i := range migrators {
		migrators[i] = newMigrator(t, db, store.Migrations())
	}
	var wg sync.WaitGroup
	for i, m := range migrators {
		wg.Go(func() { results[i], errs[i] = m.Up(context.Background()) })
	}
	wg.Wait()
	applied := map[int64]int{}
	for i := range replicas {
		if errs[i] != nil {
			t.Errorf("replica %d: %v", i, errs[i])
		}
		for _, r := range results[i] {
			applied[r.Version]++
		}
	}
	if len(applied) != 2 || applied[1] != 1 || applied[2] != 1 {
		t.Errorf("applications per version = %v, want each of 1 and 2 once", applied)
	}
	if got := versionRows(t, connect(t, db.URL)); got != "0:true 1:true 2:true" {
		t.Errorf("version rows = %s", got)
	}
}

func TestMigrationsUseTheDirectURL(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	closed := "postgres://app:pw@" + dbtest.ClosedAddr(t) + "/app"
	// DATABASE_URL goes nowhere: only DIRECT_URL can have been used.
	m := newMigrator(t, config.DB{URL: closed, DirectURL: db.URL}, store.Migrations())
	if _, err := m.Up(context.Background()); err != nil {
		t.Fatalf("Up over DIRECT_URL: %v", err)
	}
	// Without DIRECT_URL, DATABASE_URL is used.
	m = newMigrator(t, config.DB{URL: db.URL}, store.Migrations())
	if v, err := m.Version(context.Background()); err != nil || v != 2 {
		t.Errorf("Version over DATABASE_URL = %d, %v", v, err)
	}
}

// One URL often serves as both DATABASE_URL and DIRECT_URL, with pool
// settings in it; they must not reach the server as settings.
func TestMigrationsIgnorePoolParameters(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	m := newMigrator(t, config.DB{DirectURL: db.URL + "&pool_max_conns=5&pool_max_conn_lifetime=10m"}, store.Migrations())
	if _, err := m.Up(context.Background()); err != nil {
		t.Errorf("Up over a URL with pool parameters: %v", err)
	}
	if _, err := migrate.New(config.DB{DirectURL: db.URL + "&pool_max_connz=5"}, store.Migrations(), nil); err == nil ||
		!strings.Contains(err.Error(), "DIRECT_URL") {
		t.Errorf("New with an unknown pool parameter = %v, want an error naming DIRECT_URL", err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	if _, err := migrate.New(config.DB{}, store.Migrations(), nil); err == nil ||
		!strings.Contains(err.Error(), "DATABASE_URL") || !strings.Contains(err.Error(), "DIRECT_URL") {
		t.Errorf("New without URLs = %v, want an error naming both variables", err)
	}
	cfg := config.DB{URL: "postgres://app@127.0.0.1/app"}
	if _, err := migrate.New(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("New without a file system = %v", err)
	}
	dup := fstest.MapFS{"001_a.sql": {Data: []byte("-- +goose Up\n")}, "1_b.sql": {Data: []byte("-- +goose Up\n")}}
	if _, err := migrate.New(cfg, dup, nil); err == nil || !strings.Contains(err.Error(), "001_a.sql and 1_b.sql have the same version, 1") {
		t.Errorf("New with two files of one version = %v", err)
	}
	bad := fstest.MapFS{
		"00001_ok.sql":  {Data: []byte("-- +goose Up\nSELECT 1;\n")},
		"00002_bad.sql": {Data: []byte("-- +goose Up\nSELECT 1;\n-- +goose StatementBegin\nSELECT 2;\n")},
	}
	_, err := migrate.New(cfg, bad, nil)
	var pe *migrate.ParseError
	if !errors.As(err, &pe) || pe.File != "00002_bad.sql" || pe.Line != 3 || !strings.Contains(err.Error(), "00002_bad.sql:3: ") {
		t.Errorf("New with a file that does not parse = %v, want a ParseError at 00002_bad.sql:3", err)
	}
	// Files that are not migrations are ignored, as goose ignores them.
	other := fstest.MapFS{"README.md": {}, "seed.sql": {Data: []byte("garbage")}, "0_zero.sql": {}, "sub/00001_x.sql": {}, "00001_ok.sql": {Data: []byte("-- +goose Up\n")}}
	if _, err := migrate.New(cfg, other, nil); err != nil {
		t.Errorf("New with files that are not migrations: %v", err)
	}
}

// A failing migration stops Up; the migrations before it stay applied and
// the failing one leaves nothing behind, as each runs in a transaction.
func TestFailingMigration(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	fsys := fstest.MapFS{
		"00001_good.sql": {Data: []byte("-- +goose Up\nCREATE TABLE good (id int);\n-- +goose Down\nDROP TABLE good;\n")},
		"00002_bad.sql": {Data: []byte("-- +goose Up\nCREATE TABLE half (id int);\nINSERT INTO half VALUES (1);\n\n" +
			"CREATE TABLE broken (\n    id nosuchtype\n);\n-- +goose Down\n")},
		"00003_later.sql": {Data: []byte("-- +goose Up\nCREATE TABLE later (id int);\n")},
	}
	m := newMigrator(t, db, fsys)
	applied, err := m.Up(context.Background())
	// The server's error position points at line 6 of the file.
	if err == nil || !strings.Contains(err.Error(), "00002_bad.sql: line 6: ") || !strings.Contains(err.Error(), "nosuchtype") {
		t.Errorf("Up = %v, want an error naming the file, the line and the cause", err)
	}
	if len(applied) != 1 || applied[0].Version != 1 {
		t.Errorf("applied %+v, want the good one", applied)
	}
	if got := tables(t, db.URL); got != "good" {
		t.Errorf("tables = %s, want only the good migration's", got)
	}
	if v, err := m.Version(context.Background()); err != nil || v != 1 {
		t.Errorf("Version after the failure = %d, %v; want 1", v, err)
	}
	if got := versionRows(t, connect(t, db.URL)); got != "0:true 1:true" {
		t.Errorf("version rows = %s", got)
	}
}

// A PL/pgSQL function, with semicolons in its dollar-quoted body, and the
// trigger that calls it need no StatementBegin/End: the server splits the
// section itself, in a transaction or not.
func TestFunctionAndTriggerWithoutStatementBegin(t *testing.T) {
	t.Parallel()
	const up = `-- +goose Up
CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL, words int);

-- Count the words; a comment with a semicolon; and a quote ' too.
CREATE FUNCTION count_words() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    n int;
BEGIN
    n := coalesce(array_length(regexp_split_to_array(trim(NEW.body), '\s+'), 1), 0);
    NEW.words := n; -- ';' in a comment
    RAISE DEBUG 'counted %; body %', n, $$it's;$$;
    RETURN NEW;
END;
$fn$;

CREATE TRIGGER notes_count_words BEFORE INSERT OR UPDATE ON notes
    FOR EACH ROW EXECUTE FUNCTION count_words();
/* a block comment; /* nested; */ still one */
INSERT INTO notes (id, body) VALUES (1, 'one two; three'), (2, E'it\'s four');
`
	const down = `-- +goose Down
DROP TRIGGER notes_count_words ON notes;
DROP FUNCTION count_words();
DROP TABLE notes;
`
	for _, noTx := range []bool{false, true} {
		t.Run(fmt.Sprintf("NO TRANSACTION %v", noTx), func(t *testing.T) {
			t.Parallel()
			db := pg.Database(t)
			file := up + down
			if noTx {
				file = "-- +goose NO TRANSACTION\n" + file
			}
			m := newMigrator(t, db, fstest.MapFS{"00001_notes.sql": {Data: []byte(file)}})
			if _, err := m.Up(context.Background()); err != nil {
				t.Fatal(err)
			}
			conn := connect(t, db.URL)
			var words string
			if err := conn.QueryRow(context.Background(), "SELECT string_agg(words::text, ',' ORDER BY id) FROM notes").Scan(&words); err != nil || words != "3,2" {
				t.Errorf("words counted by the trigger = %q, %v; want 3,2", words, err)
			}
			if _, err := m.Down(context.Background()); err != nil {
				t.Fatal(err)
			}
			var fns int
			if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_proc WHERE proname = 'count_words'").Scan(&fns); err != nil || fns != 0 {
				t.Errorf("functions after Down = %d, %v", fns, err)
			}
		})
	}
}

// CREATE INDEX CONCURRENTLY cannot run in a transaction: with NO
// TRANSACTION each statement goes alone, and the index is built.
func TestNoTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pg.Database(t)
	const index = "-- +goose Up\nCREATE INDEX CONCURRENTLY items_name_idx ON items (name);\n" +
		"CREATE INDEX CONCURRENTLY items_lower_idx ON items (lower(name)); -- two: so no one query holds them both\n" +
		"-- +goose Down\nDROP INDEX CONCURRENTLY items_lower_idx;\nDROP INDEX CONCURRENTLY items_name_idx;\n"
	tableFile := fstest.MapFile{Data: []byte("-- +goose Up\nCREATE TABLE items (id int, name text);\nINSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 100) g;\n")}

	// In a transaction, as the file forgot NO TRANSACTION, the server refuses.
	m := newMigrator(t, db, fstest.MapFS{"00001_items.sql": &tableFile, "00002_index.sql": {Data: []byte(index)}})
	if _, err := m.Up(ctx); err == nil || !strings.Contains(err.Error(), "00002_index.sql: line 2: ") ||
		!strings.Contains(err.Error(), "cannot run inside a transaction block") {
		t.Fatalf("Up of CREATE INDEX CONCURRENTLY in a transaction = %v", err)
	}
	if v, _ := m.Version(ctx); v != 1 {
		t.Errorf("version after the refusal = %d, want 1", v)
	}

	m = newMigrator(t, db, fstest.MapFS{"00001_items.sql": &tableFile, "00002_index.sql": {Data: []byte("-- +goose NO TRANSACTION\n" + index)}})
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, db.URL)
	var valid int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_index WHERE indrelid = 'items'::regclass AND indisvalid").Scan(&valid); err != nil || valid != 2 {
		t.Errorf("valid indexes = %d, %v; want 2", valid, err)
	}
	if _, err := m.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_index WHERE indrelid = 'items'::regclass").Scan(&valid); err != nil || valid != 0 {
		t.Errorf("indexes after Down = %d, %v", valid, err)
	}
}

// A failing statement of a NO TRANSACTION migration leaves the version
// unrecorded and says where it stopped.
func TestNoTransactionFailure(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	m := newMigrator(t, db, fstest.MapFS{"00001_half.sql": {Data: []byte(
		"-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE first (id int);\nCREATE TABLE second (id nosuchtype);\n")}})
	_, err := m.Up(context.Background())
	if err == nil || !strings.Contains(err.Error(), "00001_half.sql: line 4: ") || !strings.Contains(err.Error(), "the 1 statements before it stay done") {
		t.Errorf("Up = %v", err)
	}
	if v, err := m.Version(context.Background()); err != nil || v != 0 {
		t.Errorf("Version = %d, %v; want 0", v, err)
	}
}

// A database that goose migrated carries on where goose left off: goose's
// table, of either definition, its zero row, and a rollback recorded the
// way goose's older releases did, with is_applied false.
func TestContinuesWhereGooseLeftOff(t *testing.T) {
	t.Parallel()
	files := fstest.MapFS{
		"00001_a.sql": {Data: []byte("-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n")},
		"00002_b.sql": {Data: []byte("-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n")},
		"00003_c.sql": {Data: []byte("-- +goose Up\nCREATE TABLE c (id int);\n-- +goose Down\nDROP TABLE c;\n")},
	}
	for name, table := range map[string]string{
		// goose v3.30 (internal/dialects/postgres.go)
		"identity": `CREATE TABLE goose_db_version (id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
			version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NOT NULL DEFAULT now())`,
		// goose before v3.16
		"serial": `CREATE TABLE goose_db_version (id serial NOT NULL, version_id bigint NOT NULL,
			is_applied boolean NOT NULL, tstamp timestamp NULL default now(), PRIMARY KEY(id))`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := pg.Database(t)
			conn := connect(t, db.URL)
			// goose applied 1 and 2, then rolled 2 back (an old goose: a row
			// with is_applied false), at 2020-01-02 03:04:05.
			for _, sql := range []string{table,
				"INSERT INTO goose_db_version (version_id, is_applied, tstamp) VALUES (0, true, '2020-01-02 03:04:05'), " +
					"(1, true, '2020-01-02 03:04:05'), (2, true, '2020-01-02 03:04:05'), (2, false, '2020-01-02 03:04:05')",
				"CREATE TABLE a (id int)",
			} {
				if _, err := conn.Exec(ctx, sql); err != nil {
					t.Fatal(err)
				}
			}
			m := newMigrator(t, db, files)
			if v, err := m.Version(ctx); err != nil || v != 1 {
				t.Fatalf("Version = %d, %v; want 1", v, err)
			}
			statuses, err := m.Status(ctx)
			if err != nil || len(statuses) != 3 || statuses[0].State != migrate.StateApplied ||
				statuses[1].State != migrate.StatePending || statuses[2].State != migrate.StatePending {
				t.Fatalf("Status = %+v, %v", statuses, err)
			}
			var zone string
			if err := conn.QueryRow(ctx, "SELECT current_setting('TimeZone')").Scan(&zone); err != nil {
				t.Fatal(err)
			}
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Date(2020, 1, 2, 3, 4, 5, 0, loc); !statuses[0].AppliedAt.Equal(want) {
				t.Errorf("AppliedAt = %v, want %v: tstamp in the server's TimeZone", statuses[0].AppliedAt, want)
			}
			applied, err := m.Up(ctx)
			if err != nil || len(applied) != 2 || applied[0].Version != 2 || applied[1].Version != 3 {
				t.Fatalf("Up = %+v, %v; want 2 and 3", applied, err)
			}
			if got := tables(t, db.URL); got != "a,b,c" {
				t.Errorf("tables = %s", got)
			}
			if got := versionRows(t, conn); got != "0:true 1:true 2:true 2:false 2:true 3:true" {
				t.Errorf("version rows = %s", got)
			}
			// goose's own reading: max(version_id).
			var gooseVersion int64
			if err := conn.QueryRow(ctx, "SELECT max(version_id) FROM goose_db_version").Scan(&gooseVersion); err != nil || gooseVersion != 3 {
				t.Errorf("goose's version = %d, %v", gooseVersion, err)
			}
			if r, err := m.Down(ctx); err != nil || r.Version != 3 {
				t.Fatalf("Down = %+v, %v", r, err)
			}
			if r, err := m.Down(ctx); err != nil || r.Version != 2 {
				t.Fatalf("second Down = %+v, %v", r, err)
			}
			if got := versionRows(t, conn); got != "0:true 1:true" {
				t.Errorf("version rows after Down = %s; goose deletes every row of the version", got)
			}
		})
	}
}

// Versions the database applied that have no file (a newer build's) show
// in Status; Up has nothing to do, Down refuses to guess.
func TestVersionsWithoutFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pg.Database(t)
	if _, err := newMigrator(t, db, store.Migrations()).Up(ctx); err != nil {
		t.Fatal(err)
	}
	older := newMigrator(t, db, fstest.MapFS{"00001_customers_products.sql": {Data: mustRead(t, "00001_customers_products.sql")}})
	statuses, err := older.Status(ctx)
	if err != nil || len(statuses) != 2 || statuses[1].Version != 2 || statuses[1].State != migrate.StateNoFile ||
		statuses[1].File != "" || statuses[1].AppliedAt.IsZero() {
		t.Fatalf("Status = %+v, %v; want version 2 applied without a file", statuses, err)
	}
	if v, err := older.Version(ctx); err != nil || v != 2 {
		t.Errorf("Version = %d, %v", v, err)
	}
	if applied, err := older.Up(ctx); err != nil || len(applied) != 0 {
		t.Errorf("Up = %+v, %v; want nothing to do", applied, err)
	}
	if _, err := older.Down(ctx); err == nil || !strings.Contains(err.Error(), "version 2") || !strings.Contains(err.Error(), "no migration file") {
		t.Errorf("Down = %v", err)
	}
}

// A file numbered below the database's version that is not applied stops
// Up before it applies anything, as goose stops.
func TestOutOfOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pg.Database(t)
	one := fstest.MapFile{Data: []byte("-- +goose Up\nCREATE TABLE one (id int);\n")}
	three := fstest.MapFile{Data: []byte("-- +goose Up\nCREATE TABLE three (id int);\n")}
	if _, err := newMigrator(t, db, fstest.MapFS{"00001_one.sql": &one, "00003_three.sql": &three}).Up(ctx); err != nil {
		t.Fatal(err)
	}
	m := newMigrator(t, db, fstest.MapFS{"00001_one.sql": &one, "00002_two.sql": {Data: []byte("-- +goose Up\nCREATE TABLE two (id int);\n")},
		"00003_three.sql": &three, "00004_four.sql": {Data: []byte("-- +goose Up\nCREATE TABLE four (id int);\n")}})
	applied, err := m.Up(ctx)
	if !errors.Is(err, migrate.ErrOutOfOrder) || !strings.Contains(err.Error(), "00002_two.sql, below version 3") || len(applied) != 0 {
		t.Errorf("Up = %+v, %v; want ErrOutOfOrder naming 00002_two.sql", applied, err)
	}
	if got := tables(t, db.URL); got != "one,three" {
		t.Errorf("tables = %s", got)
	}
}

// The version table is found once per session, so a migration that
// changes search_path does not move the bookkeeping.
func TestSearchPathChangesDoNotMoveTheVersionTable(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	m := newMigrator(t, db, fstest.MapFS{
		"00001_schema.sql": {Data: []byte("-- +goose NO TRANSACTION\n-- +goose Up\nCREATE SCHEMA app;\nSET search_path TO app;\nCREATE TABLE t (id int);\n")},
		"00002_more.sql":   {Data: []byte("-- +goose Up\nCREATE TABLE u (id int);\n")},
	})
	if _, err := m.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := versionRows(t, connect(t, db.URL)); got != "0:true 1:true 2:true" {
		t.Errorf("public.goose_db_version rows = %s", got)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(store.Migrations(), name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
