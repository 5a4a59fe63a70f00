package bench

import (
	"strings"
	"testing"
	"time"
)

func TestSameConns(t *testing.T) {
	for conc, want := range map[int]string{1: PgBench, 8: PgBench, PoolSize: PgBench, PoolSize + 1: PgBenchPool, 32: PgBenchPool, 64: PgBenchPool} {
		if got := SameConns(conc); got != want {
			t.Errorf("SameConns(%d) = %s, want %s", conc, got, want)
		}
		if n, ok := pgbenchClients(SameConns(conc), conc); !ok || n != min(conc, PoolSize) {
			t.Errorf("at %d goroutines the like-for-like pgbench runs %d clients (%v), want %d", conc, n, ok, min(conc, PoolSize))
		}
	}
	if _, ok := pgbenchClients(PgBenchPool, 8); ok {
		t.Error("pgbench-pool runs at 8 goroutines, where it is pgbench's very run")
	}
	// Every direct comparison with pgbench is like for like.
	for _, p := range Pairings() {
		if !isPgbench(p.B) || p.Bouncer {
			continue
		}
		for _, c := range p.Concurrency {
			if p.B != SameConns(c) {
				t.Errorf("pairing %s at %d goroutines compares with %s, want %s", p.Name, c, p.B, SameConns(c))
			}
		}
	}
}

// likeForLikeReport has pgbench much slower with a connection per goroutine
// (32) than with the pool's 10, as one server CPU makes it.
func likeForLikeReport() Report {
	point, _ := WorkloadNamed("point")
	plan := Plan{Contenders: []string{Module, RawPgx, PgBench, PgBenchPool}, Workloads: []Workload{point},
		Concurrency: []int{8, 32}, Transports: []Transport{TCP}, Duration: 2 * time.Second, Rounds: 2}
	var samples []Sample
	add := func(name string, conc, clients int, ops int64) {
		for round := range plan.Rounds {
			s := Sample{Contender: name, Workload: "point", Transport: TCP, Concurrency: conc, Round: round, Ops: ops, Elapsed: time.Second,
				CPU: 100 * time.Millisecond}
			if isPgbench(name) {
				s.Clients, s.Threads, s.Mode, s.SetupCPU, s.CPUOps = clients, 1, "prepared", 30*time.Millisecond, ops-int64(clients)
			}
			samples = append(samples, s)
		}
	}
	add(Module, 8, 0, 15000)
	add(RawPgx, 8, 0, 15000)
	add(PgBench, 8, 8, 10000)
	add(Module, 32, 0, 16000)
	add(RawPgx, 32, 0, 16000)
	add(PgBench, 32, 32, 4000)
	add(PgBenchPool, 32, 10, 20000)
	return Report{Machine: "test", Command: "go test", Plan: plan, Samples: samples, ServerCPUs: []int{1}, ClientCPUs: []int{0}, ClientProcs: 1}
}

func TestReportComparesLikeWithLike(t *testing.T) {
	r := likeForLikeReport()
	var md strings.Builder
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	var row8, row32 string
	for _, line := range strings.Split(md.String(), "\n") {
		switch {
		case strings.HasPrefix(line, "| 8 |") && row8 == "":
			row8 = line
		case strings.HasPrefix(line, "| 32 |") && row32 == "":
			row32 = line
		}
	}
	// 32 goroutines: module ÷ pgbench with 10 connections is 16000/20000;
	// against 32 connections, 4×, which is pooling.
	if !strings.Contains(row32, "| 0.80× (rounds 0.80–0.80) | 4.00× (rounds 4.00–4.00) |") || !strings.Contains(row32, "| 20000 (20000–20000) | 4000 (4000–4000) |") {
		t.Errorf("32 goroutines' row does not set pgbench with the pool's 10 connections beside the module, and 32 apart:\n%s", row32)
	}
	if !strings.Contains(row8, "| 10000 (10000–10000) | (the run to the left) |") || !strings.Contains(row8, "| 1.50× (rounds 1.50–1.50) | (the same) |") {
		t.Errorf("8 goroutines' row should show pgbench's one run once:\n%s", row8)
	}
	for _, want := range []string{"pgbench, ≤ 10 connections", "a connection per goroutine (pooling)", "measures pooling"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestReportSaysWhatRan(t *testing.T) {
	r := likeForLikeReport()
	r.Pairs = []Sample{{Pairing: "module ÷ pgbench through PgBouncer", Contender: PgBench, Transport: "pgbouncer", Clients: 32, Threads: 1, Mode: "extended", Ops: 1, Elapsed: time.Second}}
	text := r.pgbenchText() + " " + r.placementText()
	for _, want := range []string{"`-M prepared`", "`-M extended` (through PgBouncer)", "`-j 1`", "`-c` 8, 32", "`-c 10`", "`-t 1`",
		"30.0 ms at 8", "30.0 ms at 10", "30.0 ms at 32", "ran on CPU 1", "on CPU 0", "GOMAXPROCS 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("the method text lacks %q:\n%s", want, text)
		}
	}
	for _, wrong := range []string{"2 threads", "share", "shared"} {
		if strings.Contains(text, wrong) {
			t.Errorf("the method text says %q of a pinned run with one client thread:\n%s", wrong, text)
		}
	}
	r.ServerCPUs, r.ClientCPUs, r.ClientProcs = nil, nil, 2
	if p := r.placementText(); !strings.Contains(p, "shared the machine's CPUs") || !strings.Contains(p, "GOMAXPROCS 2") {
		t.Errorf("unpinned placement = %q", p)
	}
}

func TestPgbenchCPUExcludesSetup(t *testing.T) {
	s := Sample{Ops: 1010, CPUOps: 1000, CPU: 50 * time.Millisecond}
	if got := s.CPUPerOp(); got != 50*time.Microsecond {
		t.Errorf("CPUPerOp = %s, want 50µs: the CPU time over the operations it covers", got)
	}
	if got := (Sample{Ops: 100, CPU: time.Millisecond}).CPUPerOp(); got != 10*time.Microsecond {
		t.Errorf("a Go sample's CPUPerOp = %s, want 10µs", got)
	}
}

func TestTargetsUseLikeForLikePgbench(t *testing.T) {
	r := likeForLikeReport()
	for _, tg := range r.Targets() {
		if strings.Contains(tg.Goal, "pgbench") && strings.Contains(tg.Goal, "8 goroutines, TCP") {
			if !tg.Known || tg.Ratio == nil || tg.Ratio.Median != 1.5 {
				t.Errorf("target %q = %+v, want the 8-goroutine ratio 1.5 against pgbench -c 8", tg.Goal, tg)
			}
			return
		}
	}
	t.Error("no target against pgbench at 8 goroutines over TCP")
}

func TestRangeText(t *testing.T) {
	narrow := ratioOf([]float64{1, 1.01, 0.99, 1.02, 0.98, 1, 1.01, 0.99})
	wide := ratioOf([]float64{0.7, 1.3, 0.8, 1.2, 0.9, 1.4, 0.6, 1})
	if got := rangeText(narrow); strings.Contains(got, "**") || !strings.Contains(got, "8 rounds") {
		t.Errorf("narrow range text %q", got)
	}
	if got := rangeText(wide); !strings.Contains(got, "**") || !strings.Contains(got, "over 10 %") {
		t.Errorf("wide range text %q: want it marked over 10 %%", got)
	}
	if got := rangeText(ratioOf([]float64{1, 1})); !strings.Contains(got, "too few") {
		t.Errorf("two rounds' range text %q", got)
	}
	if got := rangeText(Ratio{Median: 1.16, Min: 0.97, Max: 1.49, Rounds: 20}); !strings.Contains(got, "not recorded") {
		t.Errorf("an old report's 20 rounds without a range: %q", got)
	}
}

func TestTestDBReport(t *testing.T) {
	out := `goos: linux
BenchmarkNewDatabase-2   	       1	2345678 ns/op	         8.5 database-p50-ms	        21.0 database-p95-ms	        19.0 template-p50-ms	        30.0 template-p95-ms	        70.1 migrate-p50-ms	 3.0 pool-size
BenchmarkNewDatabase/file_copy-2   	       1	2345 ns/op	        12.5 template-p50-ms
PASS
`
	m := parseBenchMetrics(out)
	for name, want := range map[string]float64{"database-p50-ms": 8.5, "database-p95-ms": 21, "template-p50-ms": 19, "migrate-p50-ms": 70.1,
		"pool-size": 3, "file_copy/template-p50-ms": 12.5} {
		if m[name] != want {
			t.Errorf("metric %s = %v, want %v (all: %v)", name, m[name], want, m)
		}
	}
	if _, ok := m["ns/op"]; ok {
		t.Error("ns/op taken for a metric")
	}
	targets := m.targets()
	if len(targets) != 3 || !targets[0].Met || !targets[1].Met || !targets[2].Met || !strings.HasPrefix(targets[2].Measured, "2.24×") {
		t.Errorf("targets %+v: want the median and p95 met and 19/8.5 = 2.24× met", targets)
	}
	var b strings.Builder
	m.markdown(&b)
	for _, want := range []string{"| way | median | p95 |", "| `Server.Database` (the test kit's way, connections included) | 8.5 ms | 21.0 ms |",
		"| `file_copy/template` | 12.5 ms | — |", "| pool-size | 3 |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("test-kit section lacks %q:\n%s", want, b.String())
		}
	}
}

func TestPgbenchTargetKeepsThePasswordOffTheCommandLine(t *testing.T) {
	for _, pw := range []string{"p@ss:w/rd", "100% sure", "pässwörd ✓"} {
		raw := "postgres://bench:" + escape(pw) + "@127.0.0.1:5433/postgres?sslmode=disable"
		args, env, err := pgbenchTarget(raw)
		if err != nil {
			t.Fatalf("%q: %v", pw, err)
		}
		if strings.Join(args, " ") != "-h 127.0.0.1 -p 5433 -U bench postgres" {
			t.Errorf("%q: args %q", pw, args)
		}
		if len(env) != 1 || env[0] != "PGPASSWORD="+pw {
			t.Errorf("%q: env %q", pw, env)
		}
	}
	args, env, err := pgbenchTarget("postgres:///postgres?host=/tmp/pg%20sock&port=5544&user=postgres")
	if err != nil || strings.Join(args, " ") != "-h /tmp/pg sock -p 5544 -U postgres postgres" || len(env) != 0 {
		t.Errorf("socket target: %q %q %v", args, env, err)
	}
}

// escape percent-encodes a password for a URL's user info.
func escape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
	}
	return b.String()
}
