package reliability_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/internal/pgtemp"
)

// The harness's PgBouncer, tested here with the suite that needs it, so
// that the root module's tests need only PostgreSQL.
func TestBouncerPoolsInTransactionMode(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b, err := pgtemp.StartBouncer(ctx, srv, pgtemp.BouncerOptions{PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	conn, err := pgx.Connect(ctx, b.URL("postgres")+"&default_query_exec_mode=exec")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var port int
	if err := conn.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&port); err != nil || port != srv.Port() {
		t.Errorf("through PgBouncer the server's port = %d, %v; want %d", port, err, srv.Port())
	}
	if b.Port() == srv.Port() {
		t.Error("PgBouncer and the server share a port")
	}
}
