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
					if isPgbench(name) {
						n, ok := pgbenchClients(name, conc)
						if !ok {
							continue
						}
						if s, err = env.runPgbench(ctx, url, w, n, plan.Duration, "prepared"); err != nil {
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
		if isPgbench(name) {
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
	fmt.Fprintf(w, "%-9s %-7s c=%-3d round %-3d %-12s %9.0f/s  p50 %-8s p99 %-8s mean %-8s cpu/op %-7s errors %d %s\n",
		s.Transport, s.Workload, s.Concurrency, s.Round+1, s.Contender, s.Throughput(),
		s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond), s.Mean.Round(time.Microsecond),
		s.CPUPerOp().Round(100*time.Nanosecond), s.Errors, s.FirstErr)
}
