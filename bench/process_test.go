package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestMeasureProcesses runs make bench's whole-process measurements on
// freshly built binaries, briefly, so that they keep working between full
// runs.
func TestMeasureProcesses(t *testing.T) {
	e := testEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	// The cycle programs are this module's; the service is the root
	// module's, built there so that it resolves the root's own go.mod.
	for _, b := range []struct{ dir, pkg string }{{".", "./cycle/..."}, {"..", "./cmd/app"}} {
		build := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", b.pkg)
		build.Dir = b.dir
		build.Env = append(build.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	dbEnv := []string{"DATABASE_URL=" + e.URL(TCP)}

	bins := CycleBinaries{Module: filepath.Join(dir, "module"), Service: filepath.Join(dir, "service"), Plain: filepath.Join(dir, "plain")}
	// Six rounds, the fewest with a 95 % range; a width of 0 asks for more,
	// so the maximum must stop them.
	const rounds = 6
	c, err := MeasureCycle(ctx, bins, append(dbEnv, "HTTP_ADDR=127.0.0.1:0", "APP_ENV=production"),
		CycleOptions{RunsPerRound: 1, MinRounds: 2, MaxRounds: rounds, Width: 0})
	if err != nil {
		t.Fatal(err)
	}
	if c.Runs != rounds || c.Rounds != rounds || c.ModuleRatio.Rounds != rounds || c.ServiceRatio.Rounds != rounds {
		t.Errorf("cycle %+v: want %d runs in %d rounds", c, rounds, rounds)
	}
	if c.ModuleRatio.Width() < 0 || c.ModuleRatio.Lo > c.ModuleRatio.Median || c.ModuleRatio.Hi < c.ModuleRatio.Median {
		t.Errorf("module ratio %+v: want a 95 %% range around the median", c.ModuleRatio)
	}
	for name, timing := range map[string]Timing{"module": c.Module, "service": c.Service, "plain": c.Plain} {
		if timing.Min <= 0 || timing.Min > timing.Median || timing.Median > timing.Max || timing.Mean <= 0 {
			t.Errorf("%s: timing %+v is not a set of positive times", name, timing)
		}
	}
	t.Logf("module ÷ plain %.2f× (rounds %.2f–%.2f), service ÷ plain %.2f×", c.ModuleRatio.Median, c.ModuleRatio.Min, c.ModuleRatio.Max, c.ServiceRatio.Median)

	m, err := MeasureIdleRSS(ctx, filepath.Join(dir, "app"), dbEnv)
	if err != nil {
		t.Fatal(err)
	}
	if m.PeakKB <= 0 || m.Probes == 0 {
		t.Errorf("idle RSS %+v: want a peak and probes", m)
	}
	t.Logf("idle service peak RSS %.1f MB", float64(m.PeakKB)/1024)
}

func TestTimingOf(t *testing.T) {
	got := timingOf([]float64{3, 1, 2, 6})
	if want := (Timing{Mean: 3, Stddev: got.Stddev, Median: 2.5, Min: 1, Max: 6}); got != want || got.Stddev < 1.87 || got.Stddev > 1.88 {
		t.Errorf("timingOf = %+v, want %+v with σ √3.5", got, want)
	}
	if got := timingOf(nil); got != (Timing{}) {
		t.Errorf("timingOf(nil) = %+v, want zero", got)
	}
}

// TestWriteChartShapes draws plans of one and of several concurrencies,
// one goroutine included, which a log scale cannot span alone.
func TestWriteChartShapes(t *testing.T) {
	for _, conc := range [][]int{{1}, {1, 8, 64}} {
		plan := Plan{Contenders: []string{Module, RawPgx}, Workloads: Workloads()[:1], Concurrency: conc, Transports: []Transport{TCP}}
		var samples []Sample
		for _, c := range conc {
			for _, name := range plan.Contenders {
				samples = append(samples, Sample{Contender: name, Workload: "select1", Transport: TCP, Concurrency: c, Round: 1,
					Ops: int64(1000 * c), Elapsed: time.Second})
			}
		}
		path := filepath.Join(t.TempDir(), "bench.png")
		if err := WriteChart(path, plan, samples); err != nil {
			t.Errorf("concurrency %v: %v", conc, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
			t.Errorf("concurrency %v: chart not written: %v", conc, err)
		}
	}
}
