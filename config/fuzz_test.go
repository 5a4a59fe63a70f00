package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// marker starts every fuzzed password, so that a leak of even its first
// characters is seen.
const marker = "Zk9Q"

// FuzzParseDB feeds the parser, and then pgx's through dbmodule, URLs built
// from fuzzed parts, a fuzzed password among them, and fuzzed tuning values.
// Whatever the input, nothing may panic, and neither an error, a redacted URL
// nor a printed config may carry the password. The seed corpus is in
// testdata/fuzz/FuzzParseDB.
func FuzzParseDB(f *testing.F) {
	f.Add("app", "secret", "db.internal", "5432", "app", "sslmode=disable", "10", "2s", false)
	f.Add("app", "p@ss/w:rd?#", "db", "99999", "app", "pool_max_conns=5", "-1", "30", true)
	f.Add("a%zz", "%41%", "[::1]", "", "", "password=x;y", "0x10", "-1h", false)
	f.Fuzz(func(t *testing.T, user, password, host, port, database, params, maxConns, timeout string, direct bool) {
		password = marker + password
		for _, part := range []string{user, host, port, database, params, maxConns, timeout} {
			if strings.Contains(part, marker) {
				return // the marker would show up legitimately
			}
		}
		url := "postgres://" + user + ":" + password + "@" + host
		if port != "" {
			url += ":" + port
		}
		url += "/" + database
		if params != "" {
			url += "?" + params
		}
		variable := "DATABASE_URL"
		if direct {
			variable = "DIRECT_URL"
		}
		db, err := config.ParseDB(map[string]string{variable: url, "DB_MAX_CONNS": maxConns, "DB_CONNECT_TIMEOUT": timeout})
		if err != nil {
			if strings.Contains(err.Error(), marker) {
				t.Fatalf("error shows the password: %v", err)
			}
			return
		}
		for _, resolve := range []func() (string, error){db.RuntimeURL, db.MigrationURL} {
			if got, err := resolve(); err != nil || got != url {
				t.Fatalf("resolution of a valid config = %q, %v; want %q", got, err, url)
			}
		}
		for _, shown := range []string{config.RedactURL(url), db.String(), fmt.Sprintf("%#v", db)} {
			if strings.Contains(shown, marker) {
				t.Fatalf("shows the password: %s", shown)
			}
		}
		if _, err := dbmodule.ParseConfig(db); err != nil && strings.Contains(err.Error(), marker) {
			t.Fatalf("pool config error shows the password: %v", err)
		}
		if _, err := dbmodule.MigrationConnConfig(db); err != nil && strings.Contains(err.Error(), marker) {
			t.Fatalf("migration config error shows the password: %v", err)
		}
	})
}
