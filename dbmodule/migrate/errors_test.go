package migrate_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/dbmodule/migrate"
	"github.com/fxpg/fxpg/store"
)

// No error shows the password, in any encoding, whatever it holds, and
// each names where it went wrong.
func TestErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	cc, err := pgx.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	// The superuser logs in with SCRAM; the test role of the harness's own
	// server is trusted, so it would take any password.
	super, err := pgx.ParseConfig(pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cc.User = super.User
	port := strconv.Itoa(int(cc.Port))
	for _, pw := range []string{"p@ss:w/rd", "100% sure", "ünï cödé ✓", "a?b#c&d=e", "sp ace/and@more:"} {
		urlFor := func(host string) string {
			u := url.URL{Scheme: "postgres", User: url.UserPassword(cc.User, pw), Host: host, Path: "/" + cc.Database, RawQuery: "sslmode=disable"}
			return u.String()
		}
		encoded := url.UserPassword(cc.User, pw).String()
		for _, target := range []struct {
			name, url, want string
		}{
			{"closed port", urlFor(dbtest.ClosedAddr(t)), "connection refused"},
			{"wrong password", urlFor(net.JoinHostPort(cc.Host, port)), "SQLSTATE 28P01"},
		} {
			m, err := migrate.New(config.DB{DirectURL: target.url}, store.Migrations(), nil)
			if err != nil {
				t.Fatalf("%s, password %q: New = %v", target.name, pw, err)
			}
			ctx := context.Background()
			_, upErr := m.Up(ctx)
			_, downErr := m.Down(ctx)
			_, statusErr := m.Status(ctx)
			_, versionErr := m.Version(ctx)
			for op, err := range map[string]error{"Up": upErr, "Down": downErr, "Status": statusErr, "Version": versionErr} {
				msg := ""
				if err != nil {
					msg = err.Error()
				}
				if !strings.Contains(msg, target.want) || !strings.Contains(msg, "(DIRECT_URL)") || !strings.Contains(msg, cc.Database) {
					t.Errorf("%s, %s: %v; want %q, the variable and the database", target.name, op, err, target.want)
				}
				for _, secret := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw), encoded} {
					if strings.Contains(msg, secret) {
						t.Errorf("%s, %s: the error shows the password (%q): %s", target.name, op, secret, msg)
					}
				}
			}
		}
	}
}

// An error without a position from the server still names the line of the
// statement that failed: the server ran the section's statements in order.
func TestErrorLineWithoutAPosition(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	m := newMigrator(t, db, fstest.MapFS{"00001_divide.sql": {Data: []byte(
		"-- +goose Up\nSELECT 1;\nDO $$ BEGIN PERFORM 2; END $$;\n\n-- a comment\nSELECT 1 / 0;\nSELECT 3;\n")}})
	_, err := m.Up(context.Background())
	if err == nil || !strings.Contains(err.Error(), "00001_divide.sql: line 6: ") || !strings.Contains(err.Error(), "division by zero") {
		t.Errorf("Up = %v, want line 6", err)
	}
	var pgErr interface{ SQLState() string }
	if !errors.As(err, &pgErr) || pgErr.SQLState() != "22012" {
		t.Errorf("the server's error is not in the chain: %v", err)
	}
}
