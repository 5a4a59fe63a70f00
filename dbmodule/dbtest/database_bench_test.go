package dbtest_test

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/dbmodule/migrate"
	"github.com/fxpg/fxpg/store"
)

// requests is how many databases each way hands out per iteration: the
// databases of a suite of 200 parallel tests.
const requests = 200

// A way of getting a test a migrated database; done gives it back.
type way struct {
	name string
	get  func(ctx context.Context, admin *pgx.Conn) (url string, done func() error, err error)
}

// BenchmarkNewDatabase asks for databases at the pace of a parallel test
// suite, interleaving three ways of getting one on the same server:
//
//   - database: Server.NewDatabase (Database without a testing.TB), a clone
//     from the pool that the kit prepares ahead;
//   - template: a bare CREATE DATABASE ... TEMPLATE of the same template
//     (the server's default strategy), as pgtestdb does;
//   - migrate: CREATE DATABASE, then applying every migration.
//
// GOMAXPROCS goroutines (go test's default -parallel) each play tests one
// after another: ask for a database, open a pool on it and ping it (the
// time measured), run a test's few statements, close the pool and give the
// database back (drop it). Each goroutine rotates the order of the three
// ways every round, so that drift and the kit's background work hit all
// three alike; the bare ways connect as the kit's role, over the same
// authentication. Reports the median (the mean of the two middle values of
// an even count) and 95th percentile of each, in ms, of the whole and of
// the part until the database was there (-db-), and the ratio of the
// template's median to the kit's.
func BenchmarkNewDatabase(b *testing.B) {
	ctx := context.Background()
	warm(b)
	template := dbtest.TemplateOf(&pg)
	var seq atomic.Int64
	fresh := func() string { return fmt.Sprintf("bench_new_database_%d", seq.Add(1)) }
	roleURL := func(name string) string {
		u, err := dbtest.RoleURL(&pg, name)
		if err != nil {
			b.Fatal(err)
		}
		return u
	}
	drop := func(admin *pgx.Conn, name string) func() error {
		return func() error {
			_, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			return err
		}
	}
	owner := pgx.Identifier{dbtest.RoleName}.Sanitize()
	ways := []way{
		{"database", kit},
		{"template", func(ctx context.Context, admin *pgx.Conn) (string, func() error, error) {
			name := fresh()
			_, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s OWNER %s",
				pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize(), owner))
			return roleURL(name), drop(admin, name), err
		}},
		{"migrate", func(ctx context.Context, admin *pgx.Conn) (string, func() error, error) {
			name := fresh()
			if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" OWNER "+owner); err != nil {
				return "", nil, err
			}
			m, err := migrate.New(config.DB{URL: roleURL(name)}, store.Migrations(), nil)
			if err != nil {
				return "", drop(admin, name), err
			}
			defer m.Close()
			_, err = m.Up(ctx)
			return roleURL(name), drop(admin, name), err
		}},
	}
	var samples map[string][]time.Duration
	for b.Loop() {
		samples = suite(b, ways)
	}
	report(b, samples, "database", "template", "migrate")
	db, tpl := median(samples["database"]), median(samples["template"])
	b.ReportMetric(float64(tpl)/float64(db), "template/database")
	b.Logf("targets: database median %.1f ms (<= 10: %s), p95 %.1f ms (<= 25: %s), template/database %.2f (>= 2: %s)",
		ms(db), met(ms(db) <= 10), ms(p95(samples["database"])), met(ms(p95(samples["database"])) <= 25),
		float64(tpl)/float64(db), met(float64(tpl)/float64(db) >= 2))
}

// BenchmarkNewDatabaseBackToBack is the kit alone at the fastest pace a
// suite can ask, tests that do next to nothing back to back: what is left
// when no other way's time lets the pool refill.
func BenchmarkNewDatabaseBackToBack(b *testing.B) {
	warm(b)
	var samples map[string][]time.Duration
	for b.Loop() {
		samples = suite(b, []way{{"backtoback", kit}})
	}
	report(b, samples, "backtoback")
}

// kit is the test kit's way.
func kit(ctx context.Context, _ *pgx.Conn) (string, func() error, error) {
	db, release, err := pg.NewDatabase(ctx)
	return db.URL, func() error { release(); return nil }, err
}

// warm builds the template and lets the pool fill, as a suite's first test
// would.
func warm(b *testing.B) {
	b.Helper()
	for range 3 {
		_, release, err := pg.NewDatabase(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		release()
	}
}

// suite runs requests tests per way on GOMAXPROCS goroutines and returns
// each way's times from asking to a pinged pool.
func suite(b *testing.B, ways []way) map[string][]time.Duration {
	ctx := context.Background()
	workers := runtime.GOMAXPROCS(0)
	var (
		mu      sync.Mutex
		samples = map[string][]time.Duration{}
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			admin, err := pgx.Connect(ctx, pg.URL(b))
			if err != nil {
				b.Error(err)
				return
			}
			defer admin.Close(ctx)
			for r := w; r < requests; r += workers {
				for i := range ways {
					way := ways[(r+i)%len(ways)] // rotated every round
					took, got, err := test(ctx, admin, way)
					if err != nil {
						b.Errorf("%s: %v", way.name, err)
						return
					}
					mu.Lock()
					samples[way.name] = append(samples[way.name], took)
					samples[way.name+"-get"] = append(samples[way.name+"-get"], got)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return samples
}

// test plays one test on a database got one way, and returns the time from
// asking to a pinged pool, and the part of it until the database was there.
func test(ctx context.Context, admin *pgx.Conn, w way) (took, got time.Duration, err error) {
	start := time.Now()
	url, done, err := w.get(ctx, admin)
	got = time.Since(start)
	if err != nil {
		if done != nil {
			done() //nolint:errcheck // reporting the first error
		}
		return 0, 0, err
	}
	pool, err := pgxpool.New(ctx, url)
	if err == nil {
		err = pool.Ping(ctx)
	}
	took = time.Since(start)
	if err == nil {
		// The test's own work, a few statements.
		_, err = pool.Exec(ctx, "INSERT INTO customers (email, name) VALUES ('ada@example.com', 'Ada')")
	}
	if err == nil {
		var n int
		err = pool.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&n)
	}
	if pool != nil {
		pool.Close()
	}
	if derr := done(); err == nil {
		err = derr
	}
	return took, got, err
}

func report(b *testing.B, samples map[string][]time.Duration, names ...string) {
	for _, name := range names {
		s := samples[name]
		if len(s) == 0 {
			b.Fatalf("no samples of %s", name)
		}
		b.ReportMetric(ms(median(s)), name+"-p50-ms")
		b.ReportMetric(ms(p95(s)), name+"-p95-ms")
		// Where the time went: until the database was there, the rest
		// connecting and pinging.
		b.ReportMetric(ms(median(samples[name+"-get"])), name+"-db-p50-ms")
		b.ReportMetric(ms(p95(samples[name+"-get"])), name+"-db-p95-ms")
	}
}

// median is the middle value, or the mean of the two middle values of an
// even count.
func median(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// p95 is the 95th percentile by the nearest-rank method.
func p95(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	return s[int(math.Ceil(0.95*float64(len(s))))-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
