package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// env is the benchmarks' server, started on first use and stopped by TestMain.
var (
	envOnce sync.Once
	env     *Env
	envErr  error
)

func testEnv(tb testing.TB) *Env {
	tb.Helper()
	envOnce.Do(func() { env, envErr = Setup(context.Background(), SetupOptions{Bouncer: true}) })
	if envErr != nil {
		tb.Fatal(envErr)
	}
	return env
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		env.Close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines outlived the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// BenchmarkQueryRow times one goroutine's queries through each Go contender,
// with allocations: cd bench && go test -run "^$" -bench QueryRow -benchmem .
func BenchmarkQueryRow(b *testing.B) {
	e := testEnv(b)
	ctx := context.Background()
	for _, wl := range []string{"select1", execWorkload, "point"} {
		w := Workload{Name: wl}
		for _, name := range []string{Module, RawPgx, PgxStdlib, LibPQ} {
			b.Run(wl+"/"+strings.ReplaceAll(name, "/", "-"), func(b *testing.B) {
				c, err := newClient(ctx, name, e.URL(TCP), "")
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				o := c.op(w)
				r := newRand(1)
				if err := o(ctx, r); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := o(ctx, r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkParallel runs the point lookup from 8 goroutines on pools of 10.
func BenchmarkParallel(b *testing.B) {
	e := testEnv(b)
	ctx := context.Background()
	w := Workload{Name: "point"}
	for _, name := range []string{Module, RawPgx, PgxStdlib, LibPQ} {
		b.Run(strings.ReplaceAll(name, "/", "-"), func(b *testing.B) {
			c, err := newClient(ctx, name, e.URL(TCP), "")
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			o := c.op(w)
			b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := newRand(uint64(time.Now().UnixNano()))
				for pb.Next() {
					if err := o(ctx, r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestRunAndReport runs a small plan end to end, every contender, workload
// and PgBouncer included, and writes its report and chart, so that the
// harness keeps working between full runs.
func TestRunAndReport(t *testing.T) {
	e := testEnv(t)
	ctx := context.Background()
	plan := Plan{Contenders: Contenders(), Workloads: Workloads(), Concurrency: []int{2}, Transports: []Transport{TCP},
		Duration: 500 * time.Millisecond, Rounds: 1} // pgbench runs its shortest, 1 s
	samples, err := Run(ctx, e, plan)
	if err != nil {
		t.Fatal(err)
	}
	// pgbench-pool does not run at 2 goroutines: it would be pgbench's run.
	if want := (len(plan.Contenders) - 1) * len(plan.Workloads) * len(plan.Transports); len(samples) != want {
		t.Fatalf("%d samples, want %d", len(samples), want)
	}
	for _, s := range samples {
		if s.Ops == 0 || s.Errors > 0 || s.Mean <= 0 || s.P99 < s.P50 || s.CPU <= 0 || (s.Contender != PgBench && s.P50 <= 0) {
			t.Errorf("sample %+v: want operations, no errors, latencies and CPU time", s)
		}
		if s.Contender == PgBench && (s.SetupCPU <= 0 || s.CPUOps != s.Ops-int64(s.Clients) || s.Clients != 2 || s.Threads < 1 || s.Mode != "prepared") {
			t.Errorf("pgbench sample %+v: want its set-up run's CPU and transactions taken off, and how it ran", s)
		}
	}
	var pairs []Sample
	for _, p := range Pairings() {
		p.Workloads, p.Concurrency, p.Transports = p.Workloads[:1], []int{2}, p.Transports[:1]
		s, err := RunPairs(ctx, e, p, PairPolicy{Min: 1, Max: 1}, 250*time.Millisecond, nil)
		if err != nil || len(s) != 2 {
			t.Fatalf("RunPairs(%s) = %d samples, %v", p.Name, len(s), err)
		}
		pairs = append(pairs, s...)
	}
	allocs, err := CountAllocs(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := Report{Machine: "test", Command: "go test", Plan: plan, Samples: samples, Pairs: pairs, PairDuration: 250 * time.Millisecond,
		PairPolicy: PairPolicy{Min: 1, Max: 1}, Allocs: allocs, Chart: "bench.png", ClientProcs: 1,
		TestDB: TestDB{"database-p50-ms": 9, "database-p95-ms": 20, "template-p50-ms": 20}}
	if err := WriteChart(dir+"/bench.png", plan, samples); err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Targets", "module ≥ 0.98× raw pgxpool", "point lookup (pgbench select-only), TCP loopback",
		"### module ÷ pgbench through PgBouncer", "| PgBouncer, TCP | point | 2 | 1 |", "`-M prepared`", "`-M extended` (through PgBouncer)",
		"## A database per test", "a test's database: p95 ≤ 25 ms"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if fi, err := os.Stat(dir + "/bench.png"); err != nil || fi.Size() == 0 {
		t.Errorf("chart not written: %v", err)
	}

	// The saved report renders the same Markdown again.
	var saved bytes.Buffer
	if err := r.WriteJSON(&saved); err != nil {
		t.Fatal(err)
	}
	again, err := ReadReport(&saved)
	if err != nil {
		t.Fatal(err)
	}
	var md2 strings.Builder
	if err := again.WriteMarkdown(&md2); err != nil {
		t.Fatal(err)
	}
	if md2.String() != md.String() {
		t.Errorf("the report read back renders differently:\n%s\nwant:\n%s", md2.String(), md.String())
	}
	if _, err := ReadReport(strings.NewReader(`{"Samples": []}`)); err == nil {
		t.Error("ReadReport accepted a report without samples")
	}
}

// TestPgbenchSameConnections runs pgbench beside the module below and above
// the pool's size: above, pgbench-pool runs with the pool's connections and
// pgbench with one per goroutine; below, pgbench alone.
func TestPgbenchSameConnections(t *testing.T) {
	e := testEnv(t)
	point, _ := WorkloadNamed("point")
	plan := Plan{Contenders: []string{Module, PgBench, PgBenchPool}, Workloads: []Workload{point}, Concurrency: []int{2, PoolSize + 2},
		Transports: []Transport{Socket}, Duration: time.Second, Rounds: 1}
	samples, err := Run(context.Background(), e, plan)
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]int{}
	for _, s := range samples {
		if isPgbench(s.Contender) {
			clients[fmt.Sprintf("%s@%d", s.Contender, s.Concurrency)] = s.Clients
		}
	}
	want := map[string]int{"pgbench@2": 2, fmt.Sprintf("pgbench@%d", PoolSize+2): PoolSize + 2, fmt.Sprintf("pgbench-pool@%d", PoolSize+2): PoolSize}
	if len(samples) != 5 || fmt.Sprint(clients) != fmt.Sprint(want) {
		t.Errorf("%d samples, pgbench clients %v; want 5 samples and %v", len(samples), clients, want)
	}
}
