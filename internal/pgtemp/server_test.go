package pgtemp_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/fxpg/fxpg/internal/pgtemp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// selectOne connects to url and runs SELECT 1.
func selectOne(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

func TestServerLifecycle(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtemp.Start(ctx, pgtemp.Options{Settings: map[string]string{"max_connections": "42"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := srv.Dir()
	for _, url := range []string{srv.URL("postgres"), srv.SocketURL("postgres")} {
		if err := selectOne(url); err != nil {
			t.Fatalf("query over %s: %v", url, err)
		}
	}
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var maxConns string
	conn.QueryRow(ctx, "SHOW max_connections").Scan(&maxConns)
	conn.Close(ctx)
	if maxConns != "42" {
		t.Errorf("max_connections = %s, want the option's 42", maxConns)
	}

	port := srv.Port()
	srv.Kill()
	if _, err := pgx.Connect(ctx, srv.URL("postgres")); err == nil {
		t.Fatal("connected to a killed server")
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("start after kill: %v", err)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := selectOne(srv.URL("postgres")); err != nil || srv.Port() != port {
		t.Errorf("after kill and restarts: port %d (was %d): %v", srv.Port(), port, err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("server directory left behind: %v", err)
	}
}

func TestServersStartInParallel(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv, err := pgtemp.Start(context.Background(), pgtemp.Options{})
			if err != nil {
				errs <- err
				return
			}
			defer srv.Close()
			errs <- selectOne(srv.URL("postgres"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
