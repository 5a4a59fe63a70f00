package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"time"
)

// A Sample is one timed run of one contender.
type Sample struct {
	Pairing     string // the Pairing whose runs these are, if any
	Contender   string
	Workload    string
	Transport   Transport
	Concurrency int
	Round       int

	Ops      int64
	Errors   int64
	Elapsed  time.Duration
	P50      time.Duration // not for pgbench, whose logged latencies are too coarse
	P99      time.Duration
	Mean     time.Duration
	CPU      time.Duration // the client's user and system time
	FirstErr string

	// pgbench's runs only: how it ran, and the CPU time of its start and
	// logins, measured apart and already taken off CPU, along with the
	// transactions of that measure (CPUOps are those CPU covers).
	Clients, Threads int
	Mode             string
	SetupCPU         time.Duration
	CPUOps           int64
}

// Throughput is operations per second.
func (s Sample) Throughput() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Ops) / s.Elapsed.Seconds()
}

// CPUPerOp is the client's CPU time per operation.
func (s Sample) CPUPerOp() time.Duration {
	ops := s.Ops
	if s.CPUOps > 0 {
		ops = s.CPUOps
	}
	if ops == 0 {
		return 0
	}
	return s.CPU / time.Duration(ops)
}

// An op is one operation of a workload, drawing its arguments from r.
type op func(ctx context.Context, r *rand.Rand) error

// drive runs op from concurrency goroutines for d, and times every call.
func drive(ctx context.Context, o op, concurrency int, d time.Duration) Sample {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		ops, bad int64
		firstErr string
	)
	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(d)
	for g := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand(uint64(g)<<32 | uint64(start.UnixNano()))
			lat := make([]time.Duration, 0, 1<<16)
			var n, errs int64
			var first string
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				if err := o(ctx, r); err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
				} else {
					n++
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			ops += n
			bad += errs
			if firstErr == "" {
				firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	s := Sample{Ops: ops, Errors: bad, Elapsed: time.Since(start), CPU: cpuTime() - cpu0, FirstErr: firstErr}
	s.P50, s.P99 = percentiles(all)
	var sum time.Duration
	for _, l := range all {
		sum += l
	}
	if len(all) > 0 {
		s.Mean = sum / time.Duration(len(all))
	}
	return s
}

// percentiles returns the median and 99th percentile of lat, which it sorts.
func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// cpuTime is this process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// warm runs o briefly so that pools have their connections and caches their
// statements before anything is timed.
func warm(ctx context.Context, o op, concurrency int) error {
	s := drive(ctx, o, concurrency, 300*time.Millisecond)
	if s.Ops == 0 {
		return fmt.Errorf("warm-up failed: %s", s.FirstErr)
	}
	return nil
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }
