// Command app runs the service: the database pool and the HTTP server with
// /healthz, /readyz and /metrics, until SIGINT or SIGTERM, then shuts down
// gracefully.
//
// Settings come from the environment (see .env.example). Unless APP_ENV is
// production in the real environment, variables are also read from the file
// given by -env-file, if it exists; real variables win over the file's.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.uber.org/dig"
	"go.uber.org/fx"

	"github.com/fxpg/fxpg/app"
	"github.com/fxpg/fxpg/internal/dotenv"
)

func main() {
	envFile := flag.String("env-file", ".env", "file of development variables to load if present; real variables win")
	startTimeout := flag.Duration("start-timeout", fx.DefaultTimeout, "time allowed for starting, migrations on start (DB_MIGRATE_ON_START) included")
	flag.Parse()
	if err := dotenv.Load(*envFile); err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(2)
	}
	os.Exit(run(*startTimeout))
}

// run starts the app, waits for a signal and stops it, returning the exit code.
func run(startTimeout time.Duration) int {
	a := app.New(fx.StartTimeout(startTimeout))
	// Wait before Start, so that SIGINT or SIGTERM arriving while the app
	// starts stops it gracefully instead of killing the process.
	signals := a.Wait()
	startCtx, cancel := context.WithTimeout(context.Background(), a.StartTimeout())
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		// The root cause, without fx's chain of constructors, is what to fix.
		fmt.Fprintln(os.Stderr, "app: start:", dig.RootCause(err))
		return 1
	}
	sig := <-signals
	stopCtx, cancel := context.WithTimeout(context.Background(), a.StopTimeout())
	defer cancel()
	if err := a.Stop(stopCtx); err != nil {
		fmt.Fprintln(os.Stderr, "app: stop:", err)
		return 1
	}
	return sig.ExitCode
}
