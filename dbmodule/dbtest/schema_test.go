package dbtest_test

import (
	"context"
	"crypto/rand"
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

//go:embed testdata
var testdata embed.FS

func sub(t testing.TB, dir string) fs.FS {
	t.Helper()
	f, err := fs.Sub(testdata, "testdata/"+dir)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// onServer returns a Server of its own on pg's server, as another test
// binary sharing a TEST_DATABASE_URL server would be, and closes it when
// the test ends.
func onServer(t *testing.T, s *dbtest.Server) *dbtest.Server {
	t.Helper()
	t.Setenv("TEST_DATABASE_URL", pg.URL(t))
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// checkLedger checks the ledger schema of testdata in db: its trigger, a
// plpgsql function, keeps each account's balance.
func checkLedger(t *testing.T, db config.DB) {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, db.URL)
	var id int64
	if err := conn.QueryRow(ctx, "INSERT INTO accounts (name) VALUES ('cash') RETURNING id").Scan(&id); err != nil {
		t.Fatal(err)
	}
	for _, amount := range []int{100, -30, 7} {
		if _, err := conn.Exec(ctx, "INSERT INTO entries (account_id, amount) VALUES ($1, $2)", id, amount); err != nil {
			t.Fatal(err)
		}
	}
	var balance int
	if err := conn.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = $1", id).Scan(&balance); err != nil || balance != 77 {
		t.Errorf("balance after entries 100, -30, 7 = %d, %v; want 77 from the trigger", balance, err)
	}
}

func TestGooseMigrationsWithTrigger(t *testing.T) {
	s := onServer(t, &dbtest.Server{Migrations: sub(t, "goose")})
	checkLedger(t, s.Database(t))
}

func TestPlainSQLSchemaWithTrigger(t *testing.T) {
	s := onServer(t, &dbtest.Server{Schema: sub(t, "schema")})
	checkLedger(t, s.Database(t))
	// Each test gets a fresh copy.
	db := s.Database(t)
	var n int
	if err := connect(t, db.URL).QueryRow(context.Background(), "SELECT count(*) FROM entries").Scan(&n); err != nil || n != 0 {
		t.Errorf("a second database has %d entries, %v", n, err)
	}
}

// ledgerMigrator is a schema tool of its own: statements one by one, over
// the extended protocol, with an argument.
type ledgerMigrator struct {
	hash     string
	ranAs    *string
	template *string
}

func (m ledgerMigrator) Hash() (string, error) { return m.hash, nil }

func (m ledgerMigrator) Migrate(ctx context.Context, conn *pgx.Conn) error {
	if err := conn.QueryRow(ctx, "SELECT current_user, current_database()").Scan(m.ranAs, m.template); err != nil {
		return err
	}
	stmts := []string{
		"CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, balance bigint NOT NULL DEFAULT 0)",
		"CREATE TABLE entries (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts (id), amount bigint NOT NULL)",
		`CREATE FUNCTION apply_entry() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			UPDATE accounts SET balance = balance + NEW.amount WHERE id = NEW.account_id;
			RETURN NEW;
		END;
		$$`,
		"CREATE TRIGGER entries_apply AFTER INSERT ON entries FOR EACH ROW EXECUTE FUNCTION apply_entry()",
	}
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	// A tool that opens connections of its own gets the URL.
	other, err := pgx.Connect(ctx, conn.Config().ConnString())
	if err != nil {
		return fmt.Errorf("connect with the template's URL: %w", err)
	}
	defer other.Close(ctx)
	_, err = other.Exec(ctx, "COMMENT ON TABLE accounts IS 'made by ledgerMigrator'")
	return err
}

func TestAnyMigratorWithTrigger(t *testing.T) {
	var ranAs, template string
	s := onServer(t, &dbtest.Server{Migrator: ledgerMigrator{hash: rand.Text(), ranAs: &ranAs, template: &template}})
	t.Cleanup(func() { dropTemplate(t, template) }) // after s.Close: a hash of its own each run
	db := s.Database(t)
	checkLedger(t, db)
	if ranAs != dbtest.RoleName {
		t.Errorf("Migrate ran as %q, want the unprivileged role %q", ranAs, dbtest.RoleName)
	}
	var comment string
	if err := connect(t, db.URL).QueryRow(context.Background(), "SELECT obj_description('accounts'::regclass)").Scan(&comment); err != nil || comment != "made by ledgerMigrator" {
		t.Errorf("comment = %q, %v", comment, err)
	}
}

// dropTemplate drops a template that no later run would use.
func dropTemplate(t *testing.T, name string) {
	if name == "" {
		return
	}
	admin := connect(t, pg.URL(t))
	id := pgx.Identifier{name}.Sanitize()
	for _, q := range []string{"ALTER DATABASE " + id + " IS_TEMPLATE false", "DROP DATABASE " + id} {
		if _, err := admin.Exec(context.Background(), q); err != nil {
			t.Error(err)
		}
	}
}

func TestExtensionsComeBeforeTheSchema(t *testing.T) {
	s := onServer(t, &dbtest.Server{
		Extensions: []string{"citext"},
		Schema:     fstest.MapFS{"schema.sql": {Data: []byte("CREATE TABLE users (email citext PRIMARY KEY);")}},
	})
	conn := connect(t, s.Database(t).URL)
	if _, err := conn.Exec(context.Background(), "INSERT INTO users VALUES ('A@example.com')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM users WHERE email = 'a@EXAMPLE.com'").Scan(&n); err != nil || n != 1 {
		t.Errorf("citext lookup found %d rows, %v", n, err)
	}
}

func TestSchemaErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		server *dbtest.Server
		want   []string
	}{
		{"two schema sources", &dbtest.Server{Migrations: sub(t, "goose"), Schema: sub(t, "schema")}, []string{"Migrations and Schema", "at most one"}},
		{"no sql file", &dbtest.Server{Schema: fstest.MapFS{"README": {Data: []byte("x")}}}, []string{"Schema has no .sql file"}},
		{"bad statement", &dbtest.Server{Schema: fstest.MapFS{"bad.sql": {Data: []byte("CREATE TABLE a (id int);\n\nCREATE TABLE b (id nosuchtype);\n")}}},
			[]string{"bad.sql line 3", "nosuchtype"}},
		{"missing extension", &dbtest.Server{Extensions: []string{"no_such_extension"}}, []string{"Extensions", "no_such_extension"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := onServer(t, c.server)
			_, _, err := s.NewDatabase(context.Background())
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("NewDatabase = %v, want an error that says %q", err, w)
				}
			}
			// Set-up errors stick: the next test fails at once, the same way.
			if _, _, again := s.NewDatabase(context.Background()); err != nil && (again == nil || again.Error() != err.Error()) {
				t.Errorf("second NewDatabase = %v, want the first's error", again)
			}
		})
	}
}
