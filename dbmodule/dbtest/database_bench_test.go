package dbtest_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/migrate"
	"github.com/fxpg/fxpg/store"
)

// BenchmarkNewDatabase measures what handing a test its database costs, over
// 50 rounds per iteration that interleave three ways of getting a migrated
// database on the same server:
//
//   - database: Server.Database, the test kit's way (a clone of the template);
//   - template: a bare CREATE DATABASE ... TEMPLATE of that same template;
//   - migrate: CREATE DATABASE, then applying every migration to it.
//
// It reports the median and 95th percentile of each, in milliseconds.
func BenchmarkNewDatabase(b *testing.B) {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	pg.Database(b) // builds the template
	var template string
	if err := admin.QueryRow(ctx, "SELECT datname FROM pg_database WHERE datistemplate AND datname LIKE 'testdb_tpl_%'").Scan(&template); err != nil {
		b.Fatal(err)
	}
	adminURL, _ := config.DB{URL: pg.URL(b)}.RuntimeURL()

	const rounds = 50
	samples := map[string][]time.Duration{}
	const bench = "bench_new_database"
	ways := []struct {
		name string
		get  func() error
	}{
		{"database", func() error { pg.Database(b); return nil }},
		{"template", func() error {
			_, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", bench, template))
			return err
		}},
		{"migrate", func() error {
			if _, err := admin.Exec(ctx, "CREATE DATABASE "+bench); err != nil {
				return err
			}
			m, err := migrate.New(config.DB{URL: withDatabase(adminURL, bench)}, store.Migrations(), zap.NewNop())
			if err != nil {
				return err
			}
			defer m.Close()
			_, err = m.Up(ctx)
			return err
		}},
	}
	drop := func() {
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+bench+" WITH (FORCE)"); err != nil {
			b.Fatal(err)
		}
	}
	drop()
	for b.Loop() {
		for range rounds {
			for _, w := range ways { // interleaved, so that drift hits all three alike
				start := time.Now()
				if err := w.get(); err != nil {
					b.Fatalf("%s: %v", w.name, err)
				}
				samples[w.name] = append(samples[w.name], time.Since(start))
				drop() // outside the timing; Database's own are dropped at the end
			}
		}
	}
	for _, w := range ways {
		s := samples[w.name]
		slices.Sort(s)
		b.ReportMetric(ms(s[len(s)/2]), w.name+"-p50-ms")
		b.ReportMetric(ms(s[len(s)*95/100]), w.name+"-p95-ms")
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// withDatabase replaces the database in a postgres URL.
func withDatabase(raw, name string) string {
	u, _ := url.Parse(raw)
	u.Path = "/" + name
	return u.String()
}
