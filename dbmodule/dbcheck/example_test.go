package dbcheck_test

import (
	"fmt"

	"github.com/fxpg/fxpg/dbmodule/dbcheck"
)

// Settings tells where each of the pool's settings comes from, without
// connecting: here the URL's pool_max_conns wins over DB_MAX_CONNS.
func ExampleSettings() {
	settings, err := dbcheck.Settings(map[string]string{
		"DATABASE_URL":      "postgres://app:secret@db.internal:5432/shop?pool_max_conns=20",
		"DB_MAX_CONNS":      "50",
		"DB_MIN_IDLE_CONNS": "2",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range settings[:3] {
		fmt.Printf("%s = %s (%s: %s)\n", s.Name, s.Value, s.Source, s.Origin)
	}
	// Output:
	// pool_max_conns = 20 (url: DATABASE_URL)
	// pool_min_conns = 0 (default: default)
	// pool_min_idle_conns = 2 (env: DB_MIN_IDLE_CONNS)
}
