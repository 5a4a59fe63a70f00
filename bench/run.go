package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// A Plan says what a run measures.
type Plan struct {
	Contenders  []string
	Workloads   []Workload
	Concurrency []int
	Transports  []Transport
	Duration    time.Duration // of each timed run; pgbench takes whole seconds
	Rounds      int           // how many times each run repeats, interleaved with the others
	Progress    io.Writer     `json:"-"` // a line per run; nil for none
}

// Run measures the plan on env: for each transport, workload and
// concurrency, Rounds rounds in which every contender runs once, in an order
// that rotates from round to round.
func Run(ctx context.Context, env *Env, plan Plan) ([]Sample, error) {
	var samples []Sample
	for _, t := range plan.Transports {
		s, err := runTransport(ctx, env, plan, t)
		samples = append(samples, s...)
		if err != nil {
			return samples, err
		}
	}
	return samples, nil
}

func runTransport(ctx context.Context, env *Env, plan Plan, t Transport) (_ []Sample, err error) {
	url := env.URL(t)
	clients, err := connect(ctx, plan.Contenders, url, "")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, closeAll(clients)) }()
	for name, c := range clients {
		for _, w := range plan.Workloads {
			if err := warm(ctx, c.op(w), PoolSize); err != nil {
				return nil, fmt.Errorf("%s over %s, %s: %w", name, t, w.Name, err)
			}
		}
	}
	var samples []Sample
	for _, w := range plan.Workloads {
		for _, conc := range plan.Concurrency {
			for round := range plan.Rounds {
				for i := range plan.Contenders {
					name := plan.Contenders[(i+round)%len(plan.Contenders)]
					var s Sample
					if name == PgBench {
						if s, err = env.runPgbench(ctx, url, w, conc, plan.Duration, "prepared"); err != nil {
							return samples, err
						}
					} else {
						s = drive(ctx, clients[name].op(w), conc, plan.Duration)
					}
					s.Contender, s.Workload, s.Transport, s.Concurrency, s.Round = name, w.Name, t, conc, round
					samples = append(samples, s)
					progress(plan.Progress, s)
				}
			}
		}
	}
	return samples, nil
}

// connect makes the Go clients among names; pgbench needs none.
func connect(ctx context.Context, names []string, url, execMode string) (map[string]client, error) {
	clients := map[string]client{}
	for _, name := range names {
		if name == PgBench {
			continue
		}
		c, err := newClient(ctx, name, url, execMode)
		if err != nil {
			return nil, errors.Join(err, closeAll(clients))
		}
		clients[name] = c
	}
	return clients, nil
}

func closeAll(clients map[string]client) error {
	var errs []error
	for name, c := range clients {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func progress(w io.Writer, s Sample) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "%-9s %-7s c=%-3d round %-2d %-11s %9.0f/s  p50 %-8s p99 %-8s mean %-8s cpu/op %-7s errors %d %s\n",
		s.Transport, s.Workload, s.Concurrency, s.Round+1, s.Contender, s.Throughput(),
		s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond), s.Mean.Round(time.Microsecond),
		s.CPUPerOp().Round(100*time.Nanosecond), s.Errors, s.FirstErr)
}

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

// Pairings are the comparisons the module's targets rest on.
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

// RunPairs measures a pairing closely: at every point, after a warm-up,
// pairs back-to-back runs of A and of B lasting d, the order alternating.
// Many short paired runs give a median ratio that a noisy virtual machine
// moves far less than it moves any single run. Each pair is a Round of the
// samples, whose Pairing field is p.Name.
func RunPairs(ctx context.Context, env *Env, p Pairing, pairs int, d time.Duration, w io.Writer) (_ []Sample, err error) {
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
					if name == PgBench {
						return env.runPgbench(ctx, url, wl, conc, d, pgbenchMode)
					}
					return drive(ctx, clients[name].op(wl), conc, d), nil
				}
				for name := range clients {
					run(name, d/2) //nolint:errcheck // warm-up
				}
				for pair := range pairs {
					order := []string{p.A, p.B}
					if pair%2 == 1 {
						order = []string{p.B, p.A}
					}
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
					}
				}
			}
		}
	}
	return samples, nil
}
