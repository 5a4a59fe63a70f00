package dbmodule_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// guardCase is one configuration of the guardrails, for the benchmark and
// the allocation test, which compare them with a raw pgxpool.
type guardCase struct {
	name    string
	cfg     func(testing.TB) config.DB
	querier bool // query through the module's Querier, not the pool
}

func guardCases() []guardCase {
	base := func(tb testing.TB) config.DB { return config.DB{URL: pg.URL(tb), MaxConns: 1} }
	with := func(f func(tb testing.TB, c *config.DB)) func(testing.TB) config.DB {
		return func(tb testing.TB) config.DB { c := base(tb); f(tb, &c); return c }
	}
	passwordFile := func(tb testing.TB, c *config.DB) {
		u, _ := config.DB{URL: pg.URL(tb)}.RuntimeURL()
		cc, err := pgxpool.ParseConfig(u)
		if err != nil {
			tb.Fatal(err)
		}
		file := filepath.Join(tb.TempDir(), "password")
		if err := os.WriteFile(file, []byte(cc.ConnConfig.Password+"\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
		c.PasswordFile = file
	}
	return []guardCase{
		{name: "module", cfg: base},
		{name: "leak", cfg: with(func(_ testing.TB, c *config.DB) { c.LeakThreshold = time.Minute })},
		{name: "acquire-timeout", cfg: with(func(_ testing.TB, c *config.DB) { c.AcquireTimeout = 5 * time.Second })},
		{name: "leak+acquire-timeout", cfg: with(func(_ testing.TB, c *config.DB) { c.LeakThreshold, c.AcquireTimeout = time.Minute, 5*time.Second })},
		{name: "password-file", cfg: with(passwordFile)},
		{name: "password-file-querier", cfg: with(passwordFile), querier: true},
	}
}

// open returns the Querier of a guardCase: the pool, or the module's Querier.
func (c guardCase) open(tb testing.TB) dbmodule.Querier {
	tb.Helper()
	cfg := c.cfg(tb)
	guard, err := dbmodule.NewGuard(dbmodule.GuardParams{Config: cfg})
	if err != nil {
		tb.Fatal(err)
	}
	pool, err := dbmodule.Open(context.Background(), cfg, dbmodule.WithGuard(guard))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	if c.querier {
		return dbmodule.NewQuerier(pool, guard)
	}
	return pool
}

func rawPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pc, err := pgxpool.ParseConfig(pg.URL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	pc.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// BenchmarkPointQueryGuards times a point query through a raw pgxpool, the
// module's pool, and the module's pool with each guardrail on, under a
// context that can be canceled (a request's) and one that cannot.
func BenchmarkPointQueryGuards(b *testing.B) {
	for _, ctxKind := range []string{"background", "cancelable"} {
		ctx := context.Background()
		if ctxKind == "cancelable" {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
		}
		run := func(b *testing.B, q dbmodule.Querier) {
			var n int
			for range 100 { // warm the statement cache
				if err := q.QueryRow(ctx, "SELECT $1::int", 1).Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := q.QueryRow(ctx, "SELECT $1::int", 1).Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.Run(ctxKind+"/pgxpool", func(b *testing.B) { run(b, rawPool(b)) })
		for _, c := range guardCases() {
			b.Run(ctxKind+"/"+c.name, func(b *testing.B) { run(b, c.open(b)) })
		}
	}
}

// What each guardrail adds to a point query's allocations, beyond a raw
// pgxpool's: leak detection and a password file nothing, the acquire
// timeout its one context, the Querier's retry its one Row.
func TestGuardAllocations(t *testing.T) {
	ctx := context.Background()
	allocs := func(q dbmodule.Querier) float64 {
		var n int
		return testing.AllocsPerRun(300, func() {
			if err := q.QueryRow(ctx, "SELECT $1::int", 1).Scan(&n); err != nil {
				t.Fatal(err)
			}
		})
	}
	raw := rawPool(t)
	allocs(raw) // warm the statement cache
	base := allocs(raw)
	want := map[string]float64{"module": 0, "leak": 0, "acquire-timeout": 6, "leak+acquire-timeout": 6, "password-file": 0, "password-file-querier": 0}
	for _, c := range guardCases() {
		q := c.open(t)
		allocs(q)
		if got := allocs(q) - base; got != want[c.name] {
			t.Errorf("%s: %.1f allocations per query more than a raw pgxpool's %.1f, want %.0f", c.name, got, base, want[c.name])
		}
	}
}

// BenchmarkAcquireReleaseGuards isolates what the guardrails add to each
// query: an Acquire and a Release of an idle connection, no round trip, so
// that the server's and the network's noise stay out of the figure.
func BenchmarkAcquireReleaseGuards(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, pool *pgxpool.Pool) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := pool.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			c.Release()
		}
	}
	b.Run("pgxpool", func(b *testing.B) { run(b, rawPool(b)) })
	for _, c := range guardCases() {
		if c.querier {
			continue // the Querier adds nothing to an explicit Acquire
		}
		b.Run(c.name, func(b *testing.B) { run(b, c.open(b).(*pgxpool.Pool)) })
	}
}
