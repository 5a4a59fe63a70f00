package dbtrace_test

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtrace"
	"github.com/fxpg/fxpg/store"
)

// Every query sqlc generated for the example store has a span name of its
// own, the one sqlc gave it (its method's name), where otelpgx alone names
// them all SELECT, INSERT or UPDATE.
func TestEveryStoreQueryHasItsOwnSpanName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tp, exporter := recorder(t)
	tracer, err := dbtrace.NewTracer(tp, dbtrace.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := dbmodule.Open(ctx, pg.Database(t), dbmodule.WithTracers(tracer))
	if err != nil {
		t.Fatal(err)
	}
	defer dbmodule.Close(ctx, pool) //nolint:errcheck // test cleanup

	q := reflect.ValueOf(store.New(pool))
	typ := reflect.TypeFor[store.Querier]()
	if typ.NumMethod() < 10 {
		t.Fatalf("the store has %d queries, want its 10 or more", typ.NumMethod())
	}
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		ctx, root := tp.Tracer("test").Start(ctx, "call")
		args := []reflect.Value{reflect.ValueOf(ctx)}
		for j := 1; j < m.Type.NumIn(); j++ {
			args = append(args, reflect.Zero(m.Type.In(j))) // some fail (an order of no customer): spans all the same
		}
		q.MethodByName(m.Name).Call(args)
		root.End()

		var names []string
		for _, s := range exporter.GetSpans() {
			if s.SpanContext.TraceID() == root.SpanContext().TraceID() && s.SpanKind == trace.SpanKindClient && s.Name != "pool.acquire" {
				names = append(names, s.Name)
				if v, _ := attr(s, "db.operation.name"); v.AsString() != m.Name {
					t.Errorf("%s: span %s has db.operation.name %q", m.Name, s.Name, v.AsString())
				}
			}
		}
		// The statement cache prepares each statement on first use, in a
		// span of its own inside the statement's, named the same.
		if want := []string{m.Name, m.Name}; !slices.Equal(names, want) {
			t.Errorf("%s: statement spans %v, want %v", m.Name, names, want)
		}
		exporter.Reset()
	}
}
