// Package app composes the service: a zap logger, fx's event log on it, the
// database module with its migrations (applied on start when
// DB_MIGRATE_ON_START=true) and typed queries, the database's Prometheus
// metrics in a registry of the app's own (NewMetricsRegistry) served at
// GET /metrics, and the HTTP server with its probes. It has no trace
// exporter, so it refuses DB_TRACING=true (apps that trace compose
// dbtrace.Module themselves). It holds no logic of its own; tests build the
// same app with New and replace what they need:
//
//	app.New(fx.Replace(config.DB{URL: testURL}))
package app
