package dbtrace_test

import (
	"os"
	"testing"

	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/store"
)

// pg is this package's PostgreSQL server, started on first use; its
// databases have the example store's schema.
var pg = dbtest.Server{Migrations: store.Migrations()}

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }
