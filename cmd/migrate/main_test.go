package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/internal/cmdtest"
)

// pg hands each test an empty database for the command to migrate.
var pg dbtest.Server

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// migrate runs the command in dir with env and returns stdout, stderr and the exit code.
func migrate(t *testing.T, bin, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run() //nolint:errcheck // the exit code is checked
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func TestCommands(t *testing.T) {
	bin := cmdtest.Build(t, "migrate")
	dir := t.TempDir()
	db := pg.Database(t)
	env := []string{"DIRECT_URL=" + db.URL}
	steps := []struct {
		args []string
		want string // a regular expression stdout must match
	}{
		{[]string{"status"}, `(?m)^1 +00001_customers_products.sql +pending *$`},
		{[]string{"up"}, `(?s)applied +00001_customers_products.sql.*applied +00002_orders.sql.*schema version 2`},
		{[]string{"up"}, `^schema version 2\n$`},
		{[]string{"status"}, `(?m)^2 +00002_orders.sql +applied +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`},
		{[]string{"down"}, `rolled back 00002_orders.sql .*\nschema version 1\n`},
		{[]string{"version"}, `^schema version 1\n$`},
	}
	for _, s := range steps {
		stdout, stderr, code := migrate(t, bin, dir, env, s.args...)
		if code != 0 || !regexp.MustCompile(s.want).MatchString(stdout) {
			t.Errorf("migrate %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(s.args, " "), code, stdout, stderr)
		}
	}

	// A version a newer build applied shows, without a file.
	conn, err := pgx.Connect(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, true)"); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := migrate(t, bin, dir, env, "status")
	if code != 0 || !regexp.MustCompile(`(?m)^99 +- +applied, no file +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`).MatchString(stdout) {
		t.Errorf("migrate status: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := migrate(t, cmdtest.Build(t, "migrate"), t.TempDir(), nil, "-dir", dir, "create", "add notes")
	if code != 0 || !strings.Contains(stdout, "00001_add_notes.sql") {
		t.Fatalf("create: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "00001_add_notes.sql")); err != nil {
		t.Error(err)
	}
}

func TestFailures(t *testing.T) {
	bin := cmdtest.Build(t, "migrate")
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		code int
		want []string
	}{
		{"no URL", nil, []string{"up"}, 1, []string{"DATABASE_URL", "DIRECT_URL"}},
		{"unreachable", []string{"DATABASE_URL=postgres://u:S3cret-pw@" + dbtest.ClosedAddr(t) + "/db"}, []string{"up"}, 1, []string{"connection refused"}},
		{"unknown command", nil, []string{"sideways"}, 2, []string{"usage"}},
		{"create without a name", nil, []string{"create"}, 2, []string{"usage"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := migrate(t, bin, t.TempDir(), tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "S3cret-pw") {
				t.Errorf("stderr shows the password:\n%s", stderr)
			}
		})
	}
}
