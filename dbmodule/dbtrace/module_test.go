package dbtrace_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtrace"
)

// secret is an argument value that must stay out of spans unless asked for.
const secret = "card-4242-4242"

// recorder is a TracerProvider that keeps its spans in memory.
func recorder(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	t.Cleanup(func() { tp.Shutdown(context.Background()) }) //nolint:errcheck // test cleanup
	return tp, exporter
}

func withProvider(tp trace.TracerProvider) fx.Option {
	return fx.Supply(fx.Annotate(tp, fx.As(new(trace.TracerProvider))))
}

// tracedApp starts dbmodule and dbtrace on the test server with settings s,
// and returns its Querier.
func tracedApp(t *testing.T, s dbtrace.Config, opts ...fx.Option) dbmodule.Querier {
	t.Helper()
	var q dbmodule.Querier
	app := fxtest.New(t, append([]fx.Option{dbmodule.Module, dbtrace.Module, fx.Replace(pg.Database(t), s), fx.Populate(&q)}, opts...)...)
	app.RequireStart()
	t.Cleanup(app.RequireStop)
	return q
}

// describe renders a span for a test log: name, status and attributes.
func describe(s tracetest.SpanStub) string {
	var attrs []string
	for _, a := range s.Attributes {
		attrs = append(attrs, string(a.Key)+"="+a.Value.String())
	}
	return fmt.Sprintf("%-12s %-5s %s", s.Name, s.Status.Code, strings.Join(attrs, " "))
}

// childrenOf returns the spans whose parent is root, in the order they ended.
func childrenOf(spans tracetest.SpanStubs, root trace.Span) tracetest.SpanStubs {
	var children tracetest.SpanStubs
	for _, s := range spans {
		if s.Parent.SpanID() == root.SpanContext().SpanID() {
			children = append(children, s)
		}
	}
	return children
}

func attr(s tracetest.SpanStub, key attribute.Key) (attribute.Value, bool) {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestSpansForAQueryAndATransaction(t *testing.T) {
	t.Parallel()
	tp, exporter := recorder(t)
	q := tracedApp(t, dbtrace.Config{Enabled: true}, withProvider(tp))
	ctx, root := tp.Tracer("test").Start(context.Background(), "checkout")

	var card string
	if err := q.QueryRow(ctx, "SELECT $1::text", secret).Scan(&card); err != nil {
		t.Fatal(err)
	}
	err := dbmodule.InTx(ctx, q, func(tx dbmodule.Querier) error {
		_, err := tx.Exec(ctx, "SELECT length($1::text)", secret)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Exec(ctx, "SELECT 1/0"); err == nil {
		t.Fatal("division by zero succeeded")
	}
	root.End()

	spans := childrenOf(exporter.GetSpans(), root)
	var names []string
	for _, s := range spans {
		t.Log(describe(s))
		if s.SpanKind == trace.SpanKindClient && s.Name != "pool.acquire" {
			names = append(names, s.Name)
		}
	}
	if want := []string{"SELECT", "BEGIN", "SELECT", "COMMIT", "SELECT"}; !slices.Equal(names, want) {
		t.Errorf("statement spans %v, want %v", names, want)
	}
	statement := func(sql string) tracetest.SpanStub {
		for _, s := range spans {
			if v, _ := attr(s, "db.query.text"); v.AsString() == sql {
				return s
			}
		}
		t.Fatalf("no span has db.query.text %q", sql)
		return tracetest.SpanStub{}
	}
	query := statement("SELECT $1::text")
	var database, user string
	if err := q.QueryRow(ctx, "SELECT current_database(), current_user").Scan(&database, &user); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[attribute.Key]string{"db.system.name": "postgresql", "db.operation.name": "SELECT", "db.namespace": database, "user.name": user} {
		if v, _ := attr(query, key); v.String() != want {
			t.Errorf("query span %s = %q, want %q", key, v.String(), want)
		}
	}
	statement("begin")
	statement("SELECT length($1::text)")
	statement("commit")
	failed := statement("SELECT 1/0")
	if v, _ := attr(failed, otelpgx.SQLStateKey); failed.Status.Code != codes.Error || v.AsString() != "22012" {
		t.Errorf("failed statement's span: status %v, SQL state %q; want an error with 22012", failed.Status.Code, v.AsString())
	}

	for _, s := range spans {
		if _, ok := attr(s, otelpgx.QueryParametersKey); ok {
			t.Errorf("span %s records arguments without DB_TRACE_QUERY_ARGS", s.Name)
		}
		if strings.Contains(fmt.Sprint(s.Attributes, s.Events), secret) {
			t.Errorf("span %s carries an argument value: %s", s.Name, describe(s))
		}
	}
}

func TestArgumentsOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	tp, exporter := recorder(t)
	q := tracedApp(t, dbtrace.Config{Enabled: true, QueryArgs: true}, withProvider(tp))
	ctx, root := tp.Tracer("test").Start(context.Background(), "lookup")
	if _, err := q.Exec(ctx, "SELECT $1::text", secret); err != nil {
		t.Fatal(err)
	}
	root.End()
	for _, s := range childrenOf(exporter.GetSpans(), root) {
		if v, ok := attr(s, otelpgx.QueryParametersKey); ok {
			if got := v.AsStringSlice(); !slices.Equal(got, []string{secret}) {
				t.Errorf("parameters %v, want [%s]", got, secret)
			}
			return
		}
	}
	t.Error("no span records the arguments although DB_TRACE_QUERY_ARGS is true")
}

// hasOTel reports whether a pool's tracer includes otelpgx's.
func hasOTel(tracer pgx.QueryTracer) bool {
	if m, ok := tracer.(*multitracer.Tracer); ok {
		return slices.ContainsFunc(m.QueryTracers, hasOTel)
	}
	_, ok := tracer.(*otelpgx.Tracer)
	return ok
}

func TestOffByDefault(t *testing.T) {
	t.Parallel()
	tp, exporter := recorder(t)
	var pool *pgxpool.Pool
	q := tracedApp(t, dbtrace.Config{}, withProvider(tp), fx.Populate(&pool))
	if hasOTel(pool.Config().ConnConfig.Tracer) {
		t.Error("the pool runs an OpenTelemetry tracer with DB_TRACING unset")
	}
	ctx, root := tp.Tracer("test").Start(context.Background(), "untraced")
	if _, err := q.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	root.End()
	if spans := exporter.GetSpans(); len(spans) != 1 {
		t.Errorf("%d spans, want only the test's own", len(spans))
	}
}

func TestTracingWithoutAProviderFailsClearly(t *testing.T) {
	t.Parallel()
	app := fx.New(dbmodule.Module, dbtrace.Module, fx.Replace(pg.Database(t), dbtrace.Config{Enabled: true}), fx.NopLogger, fx.Invoke(func(dbmodule.Querier) {}))
	var ve *config.VarError
	if err := app.Err(); !errors.As(err, &ve) || ve.Var != "DB_TRACING" || !strings.Contains(err.Error(), "trace.TracerProvider") {
		t.Errorf("DB_TRACING=true without a provider: %v; want an error naming DB_TRACING and the missing provider", err)
	}
}

// fakeQuerier stands in for the database.
type fakeQuerier struct{ dbmodule.Querier }

func (fakeQuerier) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.NewCommandTag("SELECT 1"), nil
}

// With a fake Querier no pool is built, so tracing needs neither a database
// nor a provider.
func TestFakeQuerierNeedsNoProvider(t *testing.T) {
	t.Parallel()
	app := fxtest.New(t, dbmodule.Module, dbtrace.Module,
		fx.Replace(fx.Annotate(fakeQuerier{}, fx.As(new(dbmodule.Querier)))),
		fx.Invoke(func(q dbmodule.Querier) error { _, err := q.Exec(context.Background(), "SELECT 1"); return err }))
	app.RequireStart().RequireStop()
}

func TestNewTracerNeedsAProvider(t *testing.T) {
	t.Parallel()
	if _, err := dbtrace.NewTracer(nil, dbtrace.Config{}); err == nil {
		t.Error("NewTracer without a provider succeeded")
	}
}

func TestSpanName(t *testing.T) {
	t.Parallel()
	for sql, want := range map[string]string{
		"-- name: GetCustomer :one\nSELECT 1": "GetCustomer",
		"select 1":                            "SELECT",
		"begin":                               "BEGIN",
		"(SELECT 1)":                          "UNKNOWN",
		"":                                    "UNKNOWN",
	} {
		if got := dbtrace.SpanName(sql); got != want {
			t.Errorf("SpanName(%q) = %q, want %q", sql, got, want)
		}
	}
}
