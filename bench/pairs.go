package bench

import (
	"context"
	"errors"
	"io"
	"time"
)

// A Pairing is one close comparison: contender A against B, at the points
// of Workloads × Concurrency × Transports. Through PgBouncer, A is the
// module in exec mode and B is pgbench in extended mode, over TCP.
type Pairing struct {
	Name        string // names the pairing's samples, e.g. "module ÷ pgxpool"
	A, B        string
	Bouncer     bool
	Workloads   []Workload
	Concurrency []int
	Transports  []Transport
}

// Pairings are the comparisons the module's targets rest on. Against
// pgbench they stay at or below PoolSize goroutines, where pgbench's
// clients are as many server connections as the Go pool's; through
// PgBouncer both reach the server through PoolSize connections, pgbench's
// clients queueing in PgBouncer and the module's goroutines in its pool.
func Pairings() []Pairing {
	all := Workloads()
	point, _ := WorkloadNamed("point")
	both := []Transport{TCP, Socket}
	return []Pairing{
		{Name: "module ÷ pgxpool", A: Module, B: RawPgx, Workloads: all, Concurrency: []int{1, 8, 32, 64}, Transports: []Transport{TCP}},
		{Name: "module ÷ pgx-stdlib", A: Module, B: PgxStdlib, Workloads: []Workload{point}, Concurrency: []int{8, 32}, Transports: both},
		{Name: "module ÷ lib/pq", A: Module, B: LibPQ, Workloads: []Workload{point}, Concurrency: []int{8, 32}, Transports: both},
		{Name: "module ÷ pgbench", A: Module, B: PgBench, Workloads: []Workload{point}, Concurrency: []int{8}, Transports: both},
		{Name: "module ÷ pgbench through PgBouncer", A: Module, B: PgBench, Bouncer: true, Workloads: []Workload{point}, Concurrency: []int{8, 32},
			Transports: []Transport{TCP}},
	}
}

// PairPolicy says how many pairs RunPairs runs at a point: at least Min, then
// more, two at a time so that each order runs as often, until the 95 %
// interval of the median ratio is at most Width of it wide, or Max pairs
// ran. Min == Max runs exactly that many.
type PairPolicy struct {
	Min, Max int
	Width    float64
}

// enough says whether the ratios of the pairs so far suffice.
func (p PairPolicy) enough(ratios []float64) bool {
	n := len(ratios)
	if n >= p.Max {
		return true
	}
	if n < p.Min || n%2 == 1 {
		return false
	}
	r := ratioOf(append([]float64(nil), ratios...))
	return r.Width() >= 0 && r.Width() <= p.Width
}

// RunPairs measures a pairing closely: at every point, after a warm-up,
// pairs back-to-back runs of A and of B lasting d (at least PgbenchMinRun
// when one is pgbench), the order alternating, as many pairs as policy asks.
// Many short paired runs give a median ratio that a noisy virtual machine
// moves far less than it moves any single run: its interference comes in
// bursts that a longer run does not average away (see Calibrate). Each pair
// is a Round of the samples, whose Pairing field is p.Name.
func RunPairs(ctx context.Context, env *Env, p Pairing, policy PairPolicy, d time.Duration, w io.Writer) (_ []Sample, err error) {
	if isPgbench(p.A) || isPgbench(p.B) {
		d = max(d, PgbenchMinRun)
	}
	var samples []Sample
	for _, t := range p.Transports {
		url, execMode, pgbenchMode := env.URL(t), "", "prepared"
		if p.Bouncer {
			url, execMode, pgbenchMode = env.BouncerURL(), "exec", "extended"
		}
		clients, err := connect(ctx, []string{p.A, p.B}, url, execMode)
		if err != nil {
			return samples, err
		}
		defer func() { err = errors.Join(err, closeAll(clients)) }()
		for _, wl := range p.Workloads {
			for _, conc := range p.Concurrency {
				run := func(name string, d time.Duration) (Sample, error) {
					if isPgbench(name) {
						n, _ := pgbenchClients(name, conc)
						return env.runPgbench(ctx, url, wl, n, d, pgbenchMode)
					}
					return drive(ctx, clients[name].op(wl), conc, d), nil
				}
				for _, name := range []string{p.A, p.B} {
					run(name, d/2) //nolint:errcheck // warm-up
				}
				// A pair that measured nothing (see runPgbench) adds no ratio;
				// three in a row end the point.
				var ratios []float64
				for pair, empty := 0, 0; !policy.enough(ratios) && empty < 3; pair++ {
					order := []string{p.A, p.B}
					if pair%2 == 1 {
						order = []string{p.B, p.A}
					}
					tp := map[string]float64{}
					for _, name := range order {
						s, err := run(name, d)
						if err != nil {
							return samples, err
						}
						s.Pairing, s.Contender, s.Workload, s.Transport, s.Concurrency, s.Round = p.Name, name, wl.Name, t, conc, pair
						if p.Bouncer {
							s.Transport = "pgbouncer"
						}
						samples = append(samples, s)
						progress(w, s)
						tp[name] = s.Throughput()
					}
					if tp[p.A] > 0 && tp[p.B] > 0 {
						ratios, empty = append(ratios, tp[p.A]/tp[p.B]), 0
					} else {
						empty++
					}
				}
			}
		}
	}
	return samples, nil
}
