package dbtest_test

import (
	"context"
	"fmt"
	"testing/fstest"

	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// In a test, pg.Database(t) gives the test a database of its own and drops
// it when the test passes. Code without a testing.TB, like this Example,
// asks NewDatabase and releases the database itself.
func ExampleServer_NewDatabase() {
	ctx := context.Background()
	db, release, err := pg.NewDatabase(ctx) // pg is dbtest.Server{Migrations: store.Migrations()}
	if err != nil {
		fmt.Println(err)
		return
	}
	defer release()

	pool, err := dbmodule.Open(ctx, db)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dbmodule.Close(ctx, pool) //nolint:errcheck // example
	var customers int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&customers); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("customers in a new database:", customers)
	// Output: customers in a new database: 0
}

// A plain SQL schema, as sqlc reads it, runs as one script: a plpgsql
// function and its trigger need no annotations.
func ExampleServer_schema() {
	s := dbtest.Server{Schema: fstest.MapFS{"schema.sql": {Data: []byte(`
		CREATE TABLE notes (body text NOT NULL, words int);
		CREATE FUNCTION count_words() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			NEW.words := array_length(regexp_split_to_array(trim(NEW.body), '\s+'), 1);
			RETURN NEW;
		END;
		$$;
		CREATE TRIGGER notes_words BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION count_words();
	`)}}}
	defer s.Close() // Main does this for a TestMain's Server

	ctx := context.Background()
	db, release, err := s.NewDatabase(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer release()
	pool, err := dbmodule.Open(ctx, db)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dbmodule.Close(ctx, pool) //nolint:errcheck // example
	var words int
	if err := pool.QueryRow(ctx, "INSERT INTO notes (body) VALUES ('one test, one database') RETURNING words").Scan(&words); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("words:", words)
	// Output: words: 4
}
