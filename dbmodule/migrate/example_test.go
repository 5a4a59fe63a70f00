package migrate_test

import (
	"errors"
	"fmt"
	"testing/fstest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/migrate"
)

// New reads and checks every migration file before anything connects: a
// file that cannot be read as a goose migration is named with its line.
func ExampleNew() {
	files := fstest.MapFS{
		"00001_customers.sql": {Data: []byte("-- +goose Up\nCREATE TABLE customers (id bigint PRIMARY KEY);\n-- +goose Down\nDROP TABLE customers;\n")},
		"00002_orders.sql":    {Data: []byte("-- +goose Up\nCREATE TABLE orders (id bigint);\n-- +goose StatementEnd\n")},
	}
	_, err := migrate.New(config.DB{DirectURL: "postgres://app@127.0.0.1:5432/app"}, files, nil)
	var pe *migrate.ParseError
	if errors.As(err, &pe) {
		fmt.Println(pe.File, pe.Line)
	}
	// Output: 00002_orders.sql 3
}
