// Command module starts an fx app that holds just the database module
// (dbmodule.Module, its pool pinged on start), and stops it: the module's own
// start-to-stop cost, for hyperfine to time against bench/cycle/plain.
package main

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/fxpg/fxpg/dbmodule"
)

func main() {
	a := fx.New(dbmodule.Module, fx.NopLogger, fx.Invoke(func(dbmodule.Querier) {}))
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
