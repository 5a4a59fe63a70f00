package dbtrace_test

import (
	"context"
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtrace"
)

// Without fx, add the tracer to a pool with dbmodule.WithTracers. Statements
// are traced inside a trace: here, a span the example starts.
func ExampleNewTracer() {
	ctx := context.Background()
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	defer tp.Shutdown(ctx) //nolint:errcheck // example

	url, err := pg.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	tracer, err := dbtrace.NewTracer(tp, dbtrace.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	pool, err := dbmodule.Open(ctx, config.DB{URL: url}, dbmodule.WithTracers(tracer))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dbmodule.Close(ctx, pool) //nolint:errcheck // example

	ctx, span := tp.Tracer("shop").Start(ctx, "checkout")
	var answer int
	// Spans are named by the name the statement declares, as sqlc's do.
	if err := pool.QueryRow(ctx, "-- name: Answer :one\nSELECT 6 * $1::int", 7).Scan(&answer); err != nil {
		fmt.Println(err)
		return
	}
	span.End()
	// The statement cache prepares the statement on first use, in a span of
	// its own inside the query's.
	for _, s := range exporter.GetSpans() {
		fmt.Print(s.Name)
		for _, a := range s.Attributes {
			switch a.Key {
			case "pgx.prepare_stmt.name":
				fmt.Print(" (prepare)")
			case "db.query.text", "pgx.query.parameters":
				fmt.Printf(" %s=%q", a.Key, a.Value.String())
			}
		}
		fmt.Println()
	}
	// Output:
	// pool.acquire
	// Answer (prepare) db.query.text="-- name: Answer :one\nSELECT 6 * $1::int"
	// Answer db.query.text="-- name: Answer :one\nSELECT 6 * $1::int"
	// checkout
}
