package main_test

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/fxpg/fxpg/dbmodule/dbcheck"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/internal/cmdtest"
	"github.com/fxpg/fxpg/store"
)

// pg hands each test a database with this build's migrations applied.
var pg = dbtest.Server{Migrations: store.Migrations()}

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// check runs the command in an empty directory with only env and returns
// stdout, stderr and the exit code.
func check(t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run() //nolint:errcheck // the exit code is checked
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func passwordOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := u.User.Password()
	return p
}

func userOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.User.Username()
}

func TestHealthyDatabase(t *testing.T) {
	bin := cmdtest.Build(t, "dbcheck")
	db := pg.Database(t)
	env := []string{"DATABASE_URL=" + db.URL + "&pool_max_conns=4", "DB_MIN_IDLE_CONNS=1"}
	secret := passwordOf(t, db.URL)

	stdout, stderr, code := check(t, bin, env)
	t.Logf("text:\n%s", stdout)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"status      healthy\n", "server      PostgreSQL ", "timing      connect ",
		"migrations  schema version 2, this build's latest 2; none pending (over DATABASE_URL)",
		"pool_max_conns ", "DATABASE_URL\n", "pool_min_idle_conns ", "DB_MIN_IDLE_CONNS\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text lacks %q", want)
		}
	}

	stdout, stderr, code = check(t, bin, env, "--json")
	t.Logf("json:\n%s", stdout)
	if code != 0 || stderr != "" {
		t.Fatalf("--json: exit %d, stderr %q", code, stderr)
	}
	var r dbcheck.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("--json output does not parse: %v", err)
	}
	if !r.Healthy || r.Server.VersionNum == 0 || r.Target.User != userOf(t, db.URL) || r.Timing.RoundTrips == 0 || r.Headroom.PoolMaxConns != 4 ||
		r.Migrations.Version != 2 || len(r.Migrations.Pending) != 0 {
		t.Errorf("report = %+v", r)
	}
	sources := map[string]dbcheck.Source{}
	for _, s := range r.Settings {
		sources[s.Name] = s.Source
	}
	if sources["pool_max_conns"] != dbcheck.FromURL || sources["pool_min_idle_conns"] != dbcheck.FromEnv || sources["connect_timeout"] != dbcheck.FromDefault {
		t.Errorf("sources = %v", sources)
	}
	for _, out := range []string{stdout, stderr} {
		if strings.Contains(out, secret) {
			t.Errorf("output shows the password:\n%s", out)
		}
	}
}

func TestUnhealthyDatabases(t *testing.T) {
	bin := cmdtest.Build(t, "dbcheck")
	const secret = "Sup3r-S3cret-pw"
	wrong, err := url.Parse(pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	realPassword, _ := wrong.User.Password()
	wrong.User = url.UserPassword(wrong.User.Username(), secret)
	closed := dbtest.ClosedAddr(t)
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		code int
		want string // on stderr's one line
	}{
		{"unreachable", []string{"DATABASE_URL=postgres://app:" + secret + "@" + closed + "/app"}, nil, 1,
			"dbcheck: database at " + closed + " (DATABASE_URL): refusing connections: dial error: dial tcp " + closed + ": connect: connection refused\n"},
		{"unreachable, JSON", []string{"DATABASE_URL=postgres://app:" + secret + "@" + closed + "/app"}, []string{"-json"}, 1, "refusing connections"},
		{"wrong password", []string{"DATABASE_URL=" + wrong.String()}, nil, 1, "password authentication failed"},
		{"bad settings", []string{"DATABASE_URL=postgres://app:" + secret + "@db/app", "DB_MAX_CONNS=many"}, nil, 1, "DB_MAX_CONNS"},
		{"no URL", nil, nil, 1, "neither DATABASE_URL nor DIRECT_URL is set"},
		{"bad usage", nil, []string{"extra"}, 2, "usage: dbcheck"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := check(t, bin, tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q lacks %q", stderr, tt.want)
			}
			if tt.code == 1 && strings.Count(stderr, "\n") != 1 {
				t.Errorf("the reason takes more than one line:\n%s", stderr)
			}
			for _, out := range []string{stdout, stderr} {
				if strings.Contains(out, secret) || strings.Contains(out, realPassword) {
					t.Errorf("output shows a password:\n%s", out)
				}
			}
			if slices.Contains(tt.args, "-json") {
				var r dbcheck.Report
				if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.Healthy || !strings.Contains(r.Problem, tt.want) {
					t.Errorf("JSON report = %+v, %v", r, err)
				}
			}
		})
	}
}
