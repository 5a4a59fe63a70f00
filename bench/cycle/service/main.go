// Command service starts the service (app.New, as cmd/app runs it), waits until
// it is ready, and stops it: one start-to-stop cycle for hyperfine to time
// against bench/cycle/plain.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/fxpg/fxpg/app"
)

func main() {
	a := app.New()
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		os.Exit(1)
	}
	if err := a.Stop(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "stop:", err)
		os.Exit(1)
	}
}
