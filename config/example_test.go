package config_test

import (
	"errors"
	"fmt"

	"github.com/fxpg/fxpg/config"
)

// Settings come from an explicit map in tests and from the process
// environment (LoadDB) in binaries; empty variables take their defaults.
func ExampleParseDB() {
	db, err := config.ParseDB(map[string]string{
		"DATABASE_URL": "postgres://app:s3cret@pooler:6432/app",
		"DIRECT_URL":   "postgres://app:s3cret@primary:5432/app",
		"DB_MAX_CONNS": "",
	})
	if err != nil {
		panic(err)
	}
	runtime, _ := db.RuntimeURL()
	fmt.Println(db.RuntimeVar(), config.RedactURL(runtime))
	fmt.Println(db.MigrationVar(), db.MaxConns, db.ConnectTimeout)
	// Output:
	// DATABASE_URL postgres://xxxxx@pooler:6432/app
	// DIRECT_URL 10 2s
}

// Every bad variable is reported at once, each as a *VarError naming it.
func ExampleVarError() {
	_, err := config.ParseDB(map[string]string{"DB_MAX_CONNS": "many", "DB_CONNECT_TIMEOUT": "5"})
	fmt.Println(errors.Is(err, config.ErrNoDatabaseURL))
	var ve *config.VarError
	if errors.As(err, &ve) {
		fmt.Println("first:", ve.Var)
	}
	// Output:
	// true
	// first: DB_MAX_CONNS
}

// Optional packages read their own settings the same way.
func ExampleParse() {
	type Settings struct {
		Listen bool `env:"MY_LISTEN"`
	}
	s, err := config.Parse[Settings](map[string]string{"MY_LISTEN": "true"})
	fmt.Println(s.Listen, err)
	// Output: true <nil>
}
