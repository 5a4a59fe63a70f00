// Command dbcheck reports on the database the service is configured for:
// the server's version, where the pool connects (never the password), the
// connect and round-trip times, the pool's effective settings and where each
// came from (URL parameter, DB_* variable or default), the server's
// connection headroom, and whether this build's migrations are applied.
//
//	dbcheck            readable text
//	dbcheck -json      the same as JSON, for scripts
//
// It exits 0 when the database is healthy (warnings allowed), 1 when it is
// not, with the reason on one line on stderr, and 2 on bad usage. Pending
// migrations make it unhealthy unless -allow-pending is given.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/dbcheck"
	"github.com/fxpg/fxpg/internal/dotenv"
	"github.com/fxpg/fxpg/store"
)

const usage = `usage: dbcheck [flags]

Checks the database at DATABASE_URL (else DIRECT_URL) with the pool's own
settings, and its migrations over DIRECT_URL (else DATABASE_URL).
Exit status: 0 healthy, 1 unhealthy (reason on stderr), 2 bad usage.

flags:
`

func main() {
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), usage)
		flag.PrintDefaults()
	}
	envFile := flag.String("env-file", ".env", "file of development variables to load if present; real variables win")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	allowPending := flag.Bool("allow-pending", false, "report pending migrations as a warning, not a failure")
	timeout := flag.Duration("timeout", 30*time.Second, "time allowed for the whole check")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := dotenv.Load(*envFile); err != nil {
		fmt.Fprintln(os.Stderr, "dbcheck:", err)
		os.Exit(2)
	}
	os.Exit(run(os.Stdout, os.Stderr, *asJSON, *allowPending, *timeout))
}

// run checks the database and prints the report, returning the exit code.
func run(stdout, stderr io.Writer, asJSON, allowPending bool, timeout time.Duration) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := dbcheck.Run(ctx, dbcheck.Options{Environ: config.Environ(), Migrations: store.Migrations(), AllowPending: allowPending})
	if err := write(stdout, r, asJSON); err != nil {
		fmt.Fprintln(stderr, "dbcheck:", err)
		return 1
	}
	if !r.Healthy {
		fmt.Fprintln(stderr, "dbcheck:", r.Problem)
		return 1
	}
	return 0
}

func write(out io.Writer, r dbcheck.Report, asJSON bool) error {
	if !asJSON {
		return r.WriteText(out)
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
