// Package reliability_test proves, against real processes on loopback, that
// the module keeps working through faults, load, poolers, bad input and TLS,
// and leaks neither goroutines nor passwords. Each test prints the figures it
// measured (recovery times, queries run, errors seen); run with -v to see them.
package reliability_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// pg is the server for tests that do not break it; tests that restart or
// kill a server start their own.
var pg dbtest.Server

func TestMain(m *testing.M) {
	code := pg.Main(m)
	if err := cluster.Close(); err != nil { // holds no goroutines, so it may outlive pg.Main's leak check
		fmt.Fprintln(os.Stderr, "stop the pg_auto_failover cluster:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}
