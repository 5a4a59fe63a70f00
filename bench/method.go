package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// pgbenchText says how pgbench ran, from its samples' own parameters.
func (r Report) pgbenchText() string {
	var modes []string
	var threads, clients, pooled []int
	setup := map[int][]time.Duration{}
	for _, s := range slices.Concat(r.Samples, r.Pairs) {
		if !isPgbench(s.Contender) {
			continue
		}
		mode := "`-M " + s.Mode + "`"
		if s.Transport == "pgbouncer" {
			mode += " (through PgBouncer)"
		}
		if s.Mode != "" && !slices.Contains(modes, mode) {
			modes = append(modes, mode)
		}
		if s.Threads > 0 && !slices.Contains(threads, s.Threads) {
			threads = append(threads, s.Threads)
		}
		if s.Contender == PgBenchPool {
			if !slices.Contains(pooled, s.Clients) {
				pooled = append(pooled, s.Clients)
			}
		} else if s.Clients > 0 && !slices.Contains(clients, s.Clients) {
			clients = append(clients, s.Clients)
		}
		if s.SetupCPU > 0 && s.Transport == TCP {
			setup[s.Clients] = append(setup[s.Clients], s.SetupCPU)
		}
	}
	if len(modes) == 0 && len(threads) == 0 {
		return "pgbench opens one connection per client; its CPU time per operation includes its start and logins (a report written before dbbench recorded how pgbench ran)."
	}
	var js []string
	for _, t := range slices.Sorted(slices.Values(threads)) {
		js = append(js, fmt.Sprintf("`-j %d`", t))
	}
	text := fmt.Sprintf("pgbench ran with %s, %s (a thread per CPU the client may use, at most one per client), `-c` %s (`%s`: a client, hence a "+
		"server connection, per goroutine)", strings.Join(modes, " and "), strings.Join(js, " or "), intsText(clients, ", "), PgBench)
	if len(pooled) > 0 {
		text += fmt.Sprintf(" or `-c %s` (`%s`, above %d goroutines: as many server connections as the pools)", intsText(pooled, ", "), PgBenchPool, PoolSize)
	}
	text += ". Its CPU time per operation leaves out its process start and its logins (SCRAM over TCP, trust over the socket), " +
		"as the Go contenders' warmed pools do: right after each timed run the same command runs one transaction per client " +
		"(`-t 1`), and that run's CPU time and transactions are taken off the timed run's"
	if len(setup) > 0 {
		var parts []string
		for _, c := range slices.Sorted(maps.Keys(setup)) {
			parts = append(parts, fmt.Sprintf("%s at %d", ms(median(setup[c])), c))
		}
		text += " (median over TCP, by clients: " + strings.Join(parts, ", ") + ")"
	}
	return text + "."
}

// placementText says where client and server ran.
func (r Report) placementText() string {
	switch {
	case r.ClientProcs == 0:
		return "Where client and server ran: as the machine line says."
	case len(r.ServerCPUs) > 0:
		client := "the other CPUs"
		if len(r.ClientCPUs) > 0 {
			client = fmt.Sprintf("CPU %s", cpusText(r.ClientCPUs))
		}
		return fmt.Sprintf("The server (and PgBouncer) ran on CPU %s and the client (dbbench with every Go contender, GOMAXPROCS %d, and the pgbench "+
			"it starts) on %s: each side has its own CPU, so the client's CPU time per operation is what it costs, and throughput stops where "+
			"the first side saturates.", cpusText(r.ServerCPUs), r.ClientProcs, client)
	}
	return fmt.Sprintf("Client (GOMAXPROCS %d) and server shared the machine's CPUs, so the client's CPU time per operation decides throughput.", r.ClientProcs)
}

func cpusText(cpus []int) string { return intsText(cpus, ", ") }

// intsText joins the numbers, sorted, with sep.
func intsText(ns []int, sep string) string {
	var s []string
	for _, n := range slices.Sorted(slices.Values(ns)) {
		s = append(s, fmt.Sprint(n))
	}
	return strings.Join(s, sep)
}
