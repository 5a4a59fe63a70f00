package dbmetrics_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbmetrics"
	"github.com/fxpg/fxpg/store"
)

// Every query sqlc generated for the example store is a series of its own,
// named as sqlc named it: its method's name.
func TestEveryStoreQueryHasItsOwnSeries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	pool := openPool(t, pg.Database(t), dbmodule.WithObservers(newMetrics(t, reg)))
	queries := callEveryQuery(t, store.New(pool))

	counts := countsBySummary(t, reg)
	for _, name := range queries {
		if got := counts[name]; got != 1 {
			t.Errorf("series %s counted %d statements, want 1 (its one call); all: %v", name, got, counts)
		}
	}
	if len(counts) != len(queries) {
		t.Errorf("%d summaries for %d queries: %v", len(counts), len(queries), counts)
	}
}

// callEveryQuery calls each method of store.Querier on q once, with zero
// arguments, and returns their names. Some fail (an order of no customer),
// which counts as well.
func callEveryQuery(t *testing.T, q store.Querier) []string {
	t.Helper()
	typ := reflect.TypeFor[store.Querier]()
	v := reflect.ValueOf(q)
	var names []string
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		args := []reflect.Value{reflect.ValueOf(context.Background())}
		for j := 1; j < m.Type.NumIn(); j++ {
			args = append(args, reflect.Zero(m.Type.In(j)))
		}
		out := v.MethodByName(m.Name).Call(args)
		err, _ := out[len(out)-1].Interface().(error)
		t.Logf("%s: %v", m.Name, err)
		names = append(names, m.Name)
	}
	if len(names) < 10 {
		t.Fatalf("the store has %d queries, want its 10 or more", len(names))
	}
	return names
}

// countsBySummary sums the statement durations' counts by summary.
func countsBySummary(t *testing.T, g prometheus.Gatherer) map[string]uint64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != dbmetrics.StatementDurationName {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == dbmetrics.LabelQuerySummary {
					counts[l.GetValue()] += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return counts
}
