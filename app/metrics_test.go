package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/app"
	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/httpserver"
)

// start runs app.New on a loopback port with opts, stopped when the test ends.
func start(t *testing.T, opts ...fx.Option) *httpserver.Server {
	t.Helper()
	var srv *httpserver.Server
	a := app.New(append([]fx.Option{
		fx.Replace(config.App{HTTPAddr: "127.0.0.1:0"}),
		fx.Replace(zap.NewNop()),
		fx.Populate(&srv),
	}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return srv
}

// metrics scrapes GET /metrics and returns its body, parsed and raw.
func metrics(t *testing.T, srv *httpserver.Server) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + srv.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families, string(body)
}

// value returns the value of the series of name whose labels include
// labels ("k=v" each): a counter's or gauge's value, a histogram's count.
func value(families map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := families[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		have := map[string]bool{}
		for _, l := range m.GetLabel() {
			have[l.GetName()+"="+l.GetValue()] = true
		}
		matches := true
		for _, l := range labels {
			matches = matches && have[l]
		}
		if !matches {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsFollowTheDatabase(t *testing.T) {
	var q dbmodule.Querier
	srv := start(t, pg.Module(t), fx.Populate(&q))
	ctx := context.Background()

	const (
		acquires   = "pgxpool_acquires_total"
		statements = "db_client_operation_duration_seconds"
	)
	before, _ := metrics(t, srv)
	// The statement histogram has series once statements ran, below.
	for _, want := range []string{acquires, "db_client_connection_count", "db_client_connection_max", "go_goroutines", "process_open_fds"} {
		if _, ok := before[want]; !ok {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if v, _ := value(before, "db_client_connection_max"); v != config.DefaultMaxConns {
		t.Errorf("db_client_connection_max = %v, want %d", v, config.DefaultMaxConns)
	}

	for range 3 {
		if _, err := q.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	var pgErr *pgconn.PgError
	if _, err := q.Exec(ctx, "SELECT 1/0"); !errors.As(err, &pgErr) {
		t.Fatalf("a failing query: %v", err)
	}
	after, body := metrics(t, srv)

	grew := func(name string, labels ...string) float64 {
		b, _ := value(before, name, labels...)
		a, ok := value(after, name, labels...)
		if !ok {
			t.Errorf("no %s%v after the queries", name, labels)
		}
		return a - b
	}
	if d := grew(acquires); d < 4 {
		t.Errorf("%s grew by %v over 4 queries", acquires, d)
	}
	if d := grew(statements, "db_query_summary=SELECT", "error_type="); d != 3 {
		t.Errorf("ok statements grew by %v, want 3", d)
	}
	if d := grew(statements, "db_query_summary=SELECT", "error_type=22012"); d != 1 {
		t.Errorf("failed statements grew by %v, want 1", d)
	}
	if strings.Contains(body, "SELECT 1") || strings.Contains(body, "1/0") {
		t.Error("/metrics carries SQL text")
	}
	t.Logf("/metrics, database part:\n%s", databaseLines(body))
}

// databaseLines keeps the lines of a /metrics body about the database.
func databaseLines(body string) string {
	var keep []string
	for _, line := range strings.Split(body, "\n") {
		if strings.Contains(line, "pgxpool_") || strings.Contains(line, "db_client_") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// fakeQuerier is a fake with no pool behind it.
type fakeQuerier struct{ dbmodule.Querier }

func (fakeQuerier) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.NewCommandTag("SELECT 1"), nil
}

// With a fake Querier the service serves /metrics without a database: no
// pool is built, so there are no pool metrics.
func TestMetricsWithAFakeQuerier(t *testing.T) {
	for _, v := range []string{"DATABASE_URL", "DIRECT_URL"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	srv := start(t, fx.Replace(fx.Annotate(fakeQuerier{}, fx.As(new(dbmodule.Querier)))))
	families, _ := metrics(t, srv)
	if _, ok := families["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	for name := range families {
		if strings.HasPrefix(name, "pgx") || strings.HasPrefix(name, "db_client_") {
			t.Errorf("%s exported without a pool", name)
		}
	}
}

// An app that brings its own registry gets the database's metrics there.
func TestMetricsRegistryCanBeReplaced(t *testing.T) {
	own := prometheus.NewRegistry()
	start(t, pg.Module(t), fx.Replace(own))
	families, err := own.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	if !strings.Contains(fmt.Sprint(names), "pgxpool_acquires_total") {
		t.Errorf("the app's own registry has %v, want the pool's metrics", names)
	}
}
