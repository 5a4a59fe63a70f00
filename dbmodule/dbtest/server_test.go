package dbtest_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

func ownServerOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("TEST_DATABASE_URL") != "" {
		t.Skip("about the throwaway server; TEST_DATABASE_URL is set")
	}
}

func TestSettingsTuneTheThrowawayServer(t *testing.T) {
	ownServerOnly(t)
	s := dbtest.Server{Settings: map[string]string{"work_mem": "7MB", "max_connections": "150"}}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	conn := connect(t, s.Database(t).URL)
	for setting, want := range map[string]string{"work_mem": "7MB", "max_connections": "150", "fsync": "off"} {
		var got string
		if err := conn.QueryRow(context.Background(), "SELECT current_setting($1)", setting).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", setting, got, err, want)
		}
	}
}

// On the throwaway server, which listens on loopback only, the test role
// skips the password check; the superuser does not.
func TestOnlyTheTestRoleSkipsThePassword(t *testing.T) {
	ownServerOnly(t)
	ctx := context.Background()
	wrong := func(raw string) string {
		cc, err := pgx.ParseConfig(raw)
		if err != nil {
			t.Fatal(err)
		}
		cc.Password = "wrong"
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return err.Error()
		}
		conn.Close(ctx)
		return ""
	}
	if err := wrong(pg.Database(t).URL); err != "" {
		t.Errorf("the test role with a wrong password: %s", err)
	}
	if err := wrong(pg.URL(t)); !strings.Contains(err, "password authentication failed") {
		t.Errorf("the superuser with a wrong password: %q, want SCRAM to refuse it", err)
	}
}

// The role's password is stored as a SCRAM verifier, computed here, which
// the server must accept for the password it was made from.
func TestSCRAMVerifierLogsIn(t *testing.T) {
	ctx := context.Background()
	admin := connect(t, pg.URL(t))
	verifier, err := dbtest.ScramVerifier("s3cret-for-scram")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(verifier, "s3cret") {
		t.Fatalf("the verifier %q shows the password", verifier)
	}
	if _, err := admin.Exec(ctx, "CREATE ROLE scram_check LOGIN PASSWORD '"+verifier+"'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP ROLE scram_check") }) //nolint:errcheck // cleanup
	login := func(password string) error {
		cc, err := pgx.ParseConfig(pg.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		cc.User, cc.Password = "scram_check", password
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err == nil {
			conn.Close(ctx)
		}
		return err
	}
	if err := login("wrong"); err == nil {
		t.Skip("the server does not check passwords over the URL's route (trust in pg_hba.conf)")
	}
	if err := login("s3cret-for-scram"); err != nil {
		t.Errorf("login with the verifier's password: %v", err)
	}
}

// Errors about the server's URL never show its password, however awkward.
func TestErrorsHideThePassword(t *testing.T) {
	const password = "S3cr@t:p/w%d é"
	encoded := url.UserPassword("postgres", password).String()
	for name, raw := range map[string]string{
		"nothing listens": "postgres://" + encoded + "@" + dbtest.ClosedAddr(t) + "/postgres?sslmode=disable&connect_timeout=2",
		"not encoded":     "postgres://postgres:" + password + "@127.0.0.1:1/postgres",
		"bad port":        "postgres://" + encoded + "@127.0.0.1:99999/postgres",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("TEST_DATABASE_URL", raw)
			var s dbtest.Server
			defer s.Close()
			_, _, err := s.NewDatabase(context.Background())
			if err == nil {
				t.Fatal("NewDatabase succeeded")
			}
			for _, secret := range []string{password, url.QueryEscape(password), strings.Split(encoded, ":")[1], "S3cr", "p/w"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows the password (%q)", err, secret)
				}
			}
			if name != "nothing listens" && (!strings.HasPrefix(err.Error(), "dbtest: TEST_DATABASE_URL: ") || strings.Contains(err.Error(), " DATABASE_URL")) {
				t.Errorf("error %q does not name TEST_DATABASE_URL alone", err)
			}
		})
	}
}
