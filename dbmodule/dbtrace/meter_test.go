package dbtrace_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/fx"

	"github.com/fxpg/fxpg/dbmodule/dbtrace"
)

// With the app's MeterProvider, otelpgx's own duration histogram names
// statements as their spans are named.
func TestOTelMetricsNameTheStatement(t *testing.T) {
	t.Parallel()
	tp, _ := recorder(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) }) //nolint:errcheck // test cleanup
	q := tracedApp(t, dbtrace.Config{Enabled: true}, withProvider(tp), fx.Supply(fx.Annotate(mp, fx.As(new(metric.MeterProvider)))))
	if _, err := q.Exec(context.Background(), "-- name: Answer :one\nSELECT 42"); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[float64])
			if m.Name != "db.client.operation.duration" || !ok {
				continue
			}
			for _, p := range h.DataPoints {
				if v, ok := p.Attributes.Value(attribute.Key("db.operation.name")); ok {
					names = append(names, v.AsString())
				}
			}
		}
	}
	for _, n := range names {
		if n == "Answer" {
			return
		}
	}
	t.Errorf("db.client.operation.duration has operation names %v, want Answer among them", names)
}
