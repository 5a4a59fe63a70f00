package dbtrace_test

import (
	"os"
	"testing"

	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// pg is this package's PostgreSQL server, started on first use.
var pg dbtest.Server

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }
