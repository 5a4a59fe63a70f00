package dbcheck_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/dbmodule/dbcheck"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/store"
)

// run checks with opts, bounded in time, and returns the report with its
// text and JSON forms, which must never show any of secrets.
func run(t *testing.T, opts dbcheck.Options, secrets ...string) (dbcheck.Report, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := dbcheck.Run(ctx, opts)
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(r.Problem, "\r\n") {
		t.Errorf("problem spans lines: %q", r.Problem)
	}
	if r.Healthy != (r.Problem == "") {
		t.Errorf("healthy = %v with problem %q", r.Healthy, r.Problem)
	}
	for _, s := range secrets {
		if s != "" && (strings.Contains(text.String(), s) || strings.Contains(string(js), s)) {
			t.Errorf("the output shows a password:\n%s\n%s", text.String(), js)
		}
	}
	return r, text.String(), string(js)
}

func password(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := u.User.Password()
	return p
}

func TestRunOnAHealthyDatabase(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	r, text, js := run(t, dbcheck.Options{Environ: map[string]string{"DATABASE_URL": db.URL, "DB_MAX_CONNS": "4"}, Migrations: store.Migrations()},
		password(t, db.URL))
	t.Logf("text:\n%s\njson: %s", text, js)
	if !r.Healthy {
		t.Fatalf("unhealthy: %s", r.Problem)
	}
	if len(r.Warnings) > 0 {
		t.Errorf("warnings: %v", r.Warnings)
	}
	if r.Server == nil || r.Server.VersionNum < 130000 || r.Server.InRecovery || r.Server.Database != r.Target.Database || r.Server.User != r.Target.User {
		t.Errorf("server = %+v, target %+v", r.Server, r.Target)
	}
	if r.Target.Variable != "DATABASE_URL" || r.Target.Address == "" || r.Target.Host != "127.0.0.1" {
		t.Errorf("target = %+v", r.Target)
	}
	if r.Timing == nil || r.Timing.ConnectMS <= 0 || r.Timing.RoundTrips != 5 {
		t.Errorf("timing = %+v", r.Timing)
	}
	if h := r.Headroom; h == nil || h.MaxConnections <= 0 || h.Free != h.MaxConnections-h.Reserved-h.InUse || h.PoolMaxConns != 4 || h.BehindPooler {
		t.Errorf("headroom = %+v", h)
	}
	if m := r.Migrations; m == nil || m.Version != 2 || m.Latest != 2 || m.Applied != 2 || len(m.Pending) != 0 || m.Variable != "DATABASE_URL" {
		t.Errorf("migrations = %+v", m)
	}
	if s := byName(r.Settings)["statement_timeout"]; s.Value != "0" || s.Source != dbcheck.FromDefault {
		t.Errorf("statement_timeout = %+v, want the server's own, 0", s)
	}
	for _, want := range []string{"status      healthy", "server      PostgreSQL ", "  pool_max_conns ", "DB_MAX_CONNS\n", "none pending"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	var back dbcheck.Report
	if err := json.Unmarshal([]byte(js), &back); err != nil || !back.Healthy || back.Migrations.Pending == nil || len(back.Settings) != 11 {
		t.Errorf("JSON does not read back: %v, %+v", err, back)
	}
}

// withExtra returns fsys with one more file.
func withExtra(t *testing.T, fsys fs.FS, name, content string) fs.FS {
	t.Helper()
	m := fstest.MapFS{name: {Data: []byte(content)}}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = &fstest.MapFile{Data: b}
	}
	return m
}

func TestPendingMigrationsAreAProblemUnlessAllowed(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	newer := withExtra(t, store.Migrations(), "00003_future.sql", "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 1;\n")
	environ := map[string]string{"DIRECT_URL": db.URL}

	r, _, _ := run(t, dbcheck.Options{Environ: environ, Migrations: newer})
	if r.Healthy || !strings.Contains(r.Problem, "1 migration(s) pending: 00003_future.sql") {
		t.Errorf("with a pending migration: healthy %v, problem %q", r.Healthy, r.Problem)
	}
	if m := r.Migrations; m == nil || m.Variable != "DIRECT_URL" || m.Latest != 3 || m.Version != 2 {
		t.Errorf("migrations = %+v", m)
	}

	r, _, _ = run(t, dbcheck.Options{Environ: environ, Migrations: newer, AllowPending: true})
	if !r.Healthy || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "00003_future.sql") {
		t.Errorf("allowed pending migration: healthy %v (%s), warnings %v", r.Healthy, r.Problem, r.Warnings)
	}

	older, err := fs.Sub(fstest.MapFS{"m/00001_customers_products.sql": {Data: mustRead(t, "00001_customers_products.sql")}}, "m")
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ = run(t, dbcheck.Options{Environ: environ, Migrations: older})
	if !r.Healthy || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "newer than this build's") {
		t.Errorf("schema newer than the build: healthy %v (%s), warnings %v", r.Healthy, r.Problem, r.Warnings)
	}
}

// A version the database applied that this build has no file for, below
// its latest, is worth a warning; and the check writes nothing, even to a
// database with no version table.
func TestMigrationsWithoutFilesAndWithoutATable(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	environ := map[string]string{"DIRECT_URL": db.URL}
	gap := fstest.MapFS{
		"00001_customers_products.sql": {Data: mustRead(t, "00001_customers_products.sql")},
		"00003_future.sql":             {Data: []byte("-- +goose Up\nSELECT 1;\n")},
	}
	r, _, _ := run(t, dbcheck.Options{Environ: environ, Migrations: gap, AllowPending: true})
	if !r.Healthy || len(r.Warnings) != 2 || !strings.Contains(r.Warnings[1], "version(s) 2, which this build has no migration file for") {
		t.Errorf("healthy %v (%s), warnings %q", r.Healthy, r.Problem, r.Warnings)
	}
	if m := r.Migrations; m == nil || m.Version != 2 || m.Latest != 3 || m.Applied != 1 || len(m.Pending) != 1 {
		t.Errorf("migrations = %+v", m)
	}

	conn, err := pgx.Connect(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP TABLE goose_db_version"); err != nil {
		t.Fatal(err)
	}
	r, _, _ = run(t, dbcheck.Options{Environ: environ, Migrations: store.Migrations()})
	if r.Healthy || !strings.Contains(r.Problem, "2 migration(s) pending") {
		t.Errorf("without a version table: healthy %v, problem %q", r.Healthy, r.Problem)
	}
	var exists bool
	if err := conn.QueryRow(context.Background(), "SELECT to_regclass('goose_db_version') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Errorf("the check made the version table: %v, %v", exists, err)
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

func TestPoolLargerThanTheServerIsAWarning(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	r, _, _ := run(t, dbcheck.Options{Environ: map[string]string{"DATABASE_URL": db.URL, "DB_MAX_CONNS": "100000"}})
	if !r.Healthy || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "pool_max_conns 100000 exceeds") {
		t.Errorf("healthy %v (%s), warnings %v", r.Healthy, r.Problem, r.Warnings)
	}
}

func TestUnhealthyDatabases(t *testing.T) {
	t.Parallel()
	server := pg.URL(t)
	wrong, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	wrong.User = url.UserPassword(wrong.User.Username(), secret)
	closed := dbtest.ClosedAddr(t)
	silent := dbtest.SilentAddr(t)
	for _, tt := range []struct {
		name    string
		environ map[string]string
		want    []string // in the problem
	}{
		{"nothing listens", map[string]string{"DATABASE_URL": "postgres://app:" + secret + "@" + closed + "/app"},
			[]string{"database at " + closed + " (DATABASE_URL): refusing connections: dial error: dial tcp " + closed + ": connect: connection refused"}},
		{"never answers", map[string]string{"DATABASE_URL": "postgres://app:" + secret + "@" + silent + "/app", "DB_CONNECT_TIMEOUT": "200ms"},
			[]string{"database at " + silent + " (DATABASE_URL): did not answer in time: no answer within the connect timeout 200ms"}},
		{"wrong password", map[string]string{"DATABASE_URL": wrong.String()},
			[]string{`(DATABASE_URL) as user "postgres": login refused:`, "password authentication failed", "28P01"}},
		{"bad settings", map[string]string{"DATABASE_URL": "postgres://app:" + secret + "@db/app", "DB_MAX_CONNS": "many", "DB_CONNECT_TIMEOUT": "5"},
			[]string{`DB_MAX_CONNS: "many" is not a whole number; DB_CONNECT_TIMEOUT: "5" has no unit`}},
		{"no URL", nil, []string{"DATABASE_URL", "DIRECT_URL"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			begin := time.Now()
			r, text, _ := run(t, dbcheck.Options{Environ: tt.environ, Migrations: store.Migrations()}, secret, password(t, server))
			if r.Healthy {
				t.Fatal("healthy")
			}
			for _, w := range tt.want {
				if !strings.Contains(r.Problem, w) {
					t.Errorf("problem %q lacks %q", r.Problem, w)
				}
			}
			if !strings.HasPrefix(text, "status      UNHEALTHY: "+r.Problem+"\n") {
				t.Errorf("text does not start with the problem:\n%s", text)
			}
			if took := time.Since(begin); took > 5*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
}

// proxy forwards TCP connections from a new loopback port to target, as a
// pooler in front of the server would seem; it stops when the test ends.
func proxy(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	track := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
	}
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return // closed
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			track(client)
			track(server)
			wg.Go(func() { io.Copy(server, client); server.Close() }) //nolint:errcheck // either side may close
			wg.Go(func() { io.Copy(client, server); client.Close() }) //nolint:errcheck // either side may close
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func TestBehindAPooler(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxy(t, u.Host)
	for mode, warns := range map[string]bool{"": true, "exec": false} {
		r, _, _ := run(t, dbcheck.Options{Environ: map[string]string{"DATABASE_URL": u.String(), "DB_QUERY_EXEC_MODE": mode, "DB_MAX_CONNS": "100000"}})
		if !r.Healthy || r.Headroom == nil || !r.Headroom.BehindPooler {
			t.Fatalf("exec mode %q: healthy %v (%s), headroom %+v", mode, r.Healthy, r.Problem, r.Headroom)
		}
		// A pool larger than the server is no warning behind a pooler: its
		// connections are the pooler's.
		if got := len(r.Warnings) == 1 && strings.Contains(r.Warnings[0], "pooler or proxy") && strings.Contains(r.Warnings[0], "DB_QUERY_EXEC_MODE=exec"); got != warns || len(r.Warnings) > 1 {
			t.Errorf("exec mode %q: warnings %v", mode, r.Warnings)
		}
	}
}
