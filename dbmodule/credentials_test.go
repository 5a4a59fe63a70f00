package dbmodule_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// awkward is a password with everything a URL, a shell or a log line may
// trip over; each test adds a suffix of its own.
const awkward = "p@ss:w/rd%20 ü€ 'q\"\\ end"

// loginRole makes a role that logs in with password over TCP (SCRAM, as the
// test server's pg_hba asks), not a superuser, dropped when the test ends. It
// returns the role's name and a URL with no password.
func loginRole(t *testing.T, password string) (string, string) {
	t.Helper()
	name := fmt.Sprintf("rotate_%d", time.Now().UnixNano())
	admin := adminConn(t)
	var stmt string
	if err := admin.QueryRow(context.Background(), "SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER PASSWORD %L', $1::text, $2::text)", name, password).Scan(&stmt); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(context.Background(), stmt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin := adminConn(t)
		ctx := context.Background()
		admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name) //nolint:errcheck // best effort
		if _, err := admin.Exec(ctx, "DROP ROLE "+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	u, err := url.Parse(pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(name)
	return name, u.String()
}

func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// setPassword changes role's password on the server.
func setPassword(ctx context.Context, admin *pgx.Conn, role, password string) error {
	var stmt string
	if err := admin.QueryRow(ctx, "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", role, password).Scan(&stmt); err != nil {
		return err
	}
	_, err := admin.Exec(ctx, stmt)
	return err
}

// writeFile replaces the password file at once: written aside, then renamed,
// as a Kubernetes secret volume or a Vault agent updates one.
func writeFile(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// backendsOf returns the backend start times of role's connections.
func backendsOf(ctx context.Context, admin *pgx.Conn, role string) ([]time.Time, error) {
	rows, err := admin.Query(ctx, "SELECT backend_start FROM pg_stat_activity WHERE usename = $1", role)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[time.Time])
}

// assertNoPassword fails if pw, or its URL-escaped form, is in any log
// entry or in err.
func assertNoPassword(t *testing.T, pw string, logs *observer.ObservedLogs, errs ...error) {
	t.Helper()
	if strings.TrimSpace(pw) == "" {
		return
	}
	forms := []string{pw, url.QueryEscape(pw), url.PathEscape(pw), strings.TrimSpace(pw)}
	for _, e := range logs.All() {
		text := fmt.Sprint(e.Message, e.ContextMap())
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("log entry %q carries the password", e.Message)
			}
		}
	}
	for _, err := range errs {
		for _, f := range forms {
			if err != nil && strings.Contains(err.Error(), f) {
				t.Errorf("error %q carries the password", err)
			}
		}
	}
}

func TestPasswordFileIsReadAtEachConnect(t *testing.T) {
	first := awkward + " 1"
	role, u := loginRole(t, first)
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pool, guard, logs := guardedPool(t, config.DB{URL: u, PasswordFile: file}, nil)
	ctx := context.Background()
	var who string
	if err := pool.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != role {
		t.Fatalf("current_user = %q, %v; want %s", who, err, role)
	}

	// Rotated on the server and in the file: the next new connection uses it,
	// with no restart.
	second := awkward + " 2\r\n"
	if err := setPassword(ctx, adminConn(t), role, strings.TrimSpace(second)); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(file, second); err != nil {
		t.Fatal(err)
	}
	before := pool.Stat().NewConnsCount()
	dbmodule.RetireConnections(pool)
	if err := pool.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil {
		t.Fatalf("query after the rotation: %v", err)
	}
	if pool.Stat().NewConnsCount() == before {
		t.Error("RetireConnections left the old connection in use")
	}
	if s := guard.Stats(); s.PasswordFetches < 2 || s.PasswordFailures != 0 {
		t.Errorf("stats = %v, want a read per connect and no failure", s)
	}
	assertNoPassword(t, first, logs)
	assertNoPassword(t, strings.TrimSpace(second), logs)
}

func TestPasswordFileErrorsNameTheFileNotItsContent(t *testing.T) {
	const pw = awkward + " file errors"
	_, u := loginRole(t, pw)
	dir := t.TempDir()
	for _, tt := range []struct {
		name, content, want string
	}{
		{"missing", "", "no such file"},
		{"empty", "\n", "is empty"},
		{"wrong", pw + " but not quite\n", "password authentication failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, tt.name)
			if tt.name != "missing" {
				if err := os.WriteFile(file, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			log, logs := observed()
			_, err := startErr(t, config.DB{URL: u, PasswordFile: file}, fx.Supply(log))
			if err == nil {
				t.Fatal("start succeeded")
			}
			t.Logf("%v", err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if tt.name != "wrong" && (!errors.Is(err, dbmodule.ErrPasswordUnavailable) || !strings.Contains(err.Error(), "DB_PASSWORD_FILE") || !strings.Contains(err.Error(), file)) {
				t.Errorf("error %q does not name DB_PASSWORD_FILE and %s", err, file)
			}
			assertNoPassword(t, pw, logs, err)
			assertNoPassword(t, tt.content, logs, err)
		})
	}
}

func TestPasswordFileAndProviderConflict(t *testing.T) {
	_, err := dbmodule.NewGuard(dbmodule.GuardParams{
		Config: config.DB{URL: "postgres://app@db/app", PasswordFile: "/run/secrets/db"},
		Passwords: dbmodule.PasswordFunc(func(context.Context, dbmodule.PasswordTarget) (string, time.Time, error) {
			return "x", time.Time{}, nil
		}),
	})
	var ve *config.VarError
	if !errors.As(err, &ve) || ve.Var != "DB_PASSWORD_FILE" {
		t.Errorf("NewGuard = %v, want an error naming DB_PASSWORD_FILE", err)
	}
}

// countingProvider returns the role's current password, counting its calls.
type countingProvider struct {
	mu       sync.Mutex
	password string
	ttl      time.Duration // zero: no expiry
	delay    time.Duration
	err      error
	calls    atomic.Int64
	targets  []dbmodule.PasswordTarget
}

func (p *countingProvider) set(password string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.password, p.err = password, err
}

func (p *countingProvider) Password(ctx context.Context, target dbmodule.PasswordTarget) (string, time.Time, error) {
	p.calls.Add(1)
	if p.delay > 0 {
		select {
		case <-time.After(p.delay):
		case <-ctx.Done():
			return "", time.Time{}, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.targets = append(p.targets, target)
	var expires time.Time
	if p.ttl > 0 {
		expires = time.Now().Add(p.ttl)
	}
	return p.password, expires, p.err
}

// A burst of connects calls the provider once; its password serves until
// shortly before it expires, and is then asked for again, once.
func TestPasswordProviderIsCachedAndCalledOnceForABurst(t *testing.T) {
	const pw = awkward + " provider"
	role, u := loginRole(t, pw)
	const ttl = 400 * time.Millisecond // fresh for three quarters of it
	provider := &countingProvider{password: pw, ttl: ttl, delay: 50 * time.Millisecond}
	pool, guard, logs := guardedPool(t, config.DB{URL: u, MaxConns: 20}, provider)
	fetched := time.Now()
	if n := provider.calls.Load(); n != 1 {
		t.Fatalf("%d provider calls for the start ping, want 1", n)
	}
	// burst opens 20 new connections at once.
	burst := func() {
		dbmodule.RetireConnections(pool)
		var wg sync.WaitGroup
		conns := make(chan *pgxpool.Conn, 20)
		for range 20 {
			wg.Go(func() {
				c, err := pool.Acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				conns <- c
			})
		}
		wg.Wait()
		close(conns)
		for c := range conns {
			c.Release()
		}
	}
	opened := pool.Stat().NewConnsCount()
	burst()
	if time.Since(fetched) < ttl*3/4 {
		if n := provider.calls.Load(); n != 1 {
			t.Errorf("%d provider calls after 20 connects with a fresh password, want 1", n)
		}
	}
	if tg := provider.targets[0]; tg.User != role || tg.Host != "127.0.0.1" || tg.Port == 0 || tg.Database != "postgres" {
		t.Errorf("target = %+v", tg)
	}

	dbtest.WaitFor(t, "the password to go stale", func() bool { return time.Since(fetched) > ttl*3/4 })
	before := provider.calls.Load()
	burst()
	if n := provider.calls.Load() - before; n != 1 {
		t.Errorf("%d provider calls for a burst of 20 connects with a stale password, want 1", n)
	}
	t.Logf("%d connections opened, %d provider calls; %v", pool.Stat().NewConnsCount()-opened+1, provider.calls.Load(), guard.Stats())
	assertNoPassword(t, pw, logs)
}

// A failing provider fails new connections with a clear error; the pool
// keeps the connections it has and their queries work.
func TestFailingProviderKeepsLiveConnections(t *testing.T) {
	const pw = awkward + " failing"
	_, u := loginRole(t, pw)
	provider := &countingProvider{password: pw} // no expiry: asked at every connect
	pool, guard, logs := guardedPool(t, config.DB{URL: u, MaxConns: 3}, provider)
	ctx := context.Background()
	a, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Release()
	b.Release()

	provider.set("", errors.New("token service: 503 Service Unavailable"))
	held := []*pgxpool.Conn{}
	for range 2 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatalf("an open connection was not handed out: %v", err)
		}
		if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
			t.Errorf("query on an open connection: %v", err)
		}
		held = append(held, c)
	}
	_, err = pool.Acquire(ctx) // needs a new connection
	t.Logf("%v", err)
	if !errors.Is(err, dbmodule.ErrPasswordUnavailable) || !strings.Contains(err.Error(), "503 Service Unavailable") {
		t.Errorf("new connection with the provider failing: %v, want ErrPasswordUnavailable with the provider's reason", err)
	}
	for _, c := range held {
		c.Release()
	}
	if n := pool.Stat().TotalConns(); n != 2 {
		t.Errorf("the pool has %d connections, want the 2 it had", n)
	}
	if s := guard.Stats(); s.PasswordFailures < 1 {
		t.Errorf("stats = %v, want a failure counted", s)
	}
	assertNoPassword(t, pw, logs, err)
}

// The module's Querier rides through a rotation's gap: the provider's cached
// password is rejected by the server, dropped, asked anew, and the call
// succeeds.
func TestQuerierRetriesARejectedPassword(t *testing.T) {
	const old, fresh = awkward + " old", awkward + " new"
	role, u := loginRole(t, old)
	provider := &countingProvider{password: old, ttl: time.Hour}
	log, logs := observed()
	var (
		q     dbmodule.Querier
		guard *dbmodule.Guard
		pool  *pgxpool.Pool
	)
	app := fxtest.New(t, dbmodule.Module, fx.Replace(config.DB{URL: u}), fx.Supply(log),
		fx.Provide(dbmodule.AsPasswordProvider(func() *countingProvider { return provider })),
		fx.Populate(&q, &guard, &pool))
	app.RequireStart()
	defer app.RequireStop()

	if err := setPassword(context.Background(), adminConn(t), role, fresh); err != nil {
		t.Fatal(err)
	}
	provider.set(fresh, nil)
	dbmodule.RetireConnections(pool)
	var who string
	if err := q.QueryRow(context.Background(), "SELECT current_user").Scan(&who); err != nil || who != role {
		t.Fatalf("query after the rotation = %q, %v", who, err)
	}
	if s := guard.Stats(); s.CredentialRetries < 1 || provider.calls.Load() != 2 {
		t.Errorf("stats = %v, %d provider calls; want a retry and a second call", s, provider.calls.Load())
	}
	// Through the pool itself, a rejected password fails the call: the
	// retry is the Querier's.
	if err := setPassword(context.Background(), adminConn(t), role, old); err != nil {
		t.Fatal(err)
	}
	dbmodule.RetireConnections(pool)
	if _, err := pool.Exec(context.Background(), "SELECT 1"); err == nil || !strings.Contains(err.Error(), "28P01") {
		t.Errorf("pool.Exec with a rejected password = %v, want 28P01", err)
	}
	assertNoPassword(t, old, logs)
	assertNoPassword(t, fresh, logs)
	dbtest.WaitFor(t, "nothing held", func() bool { return pool.Stat().AcquiredConns() == 0 })
}
