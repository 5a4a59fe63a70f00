package bench

import (
	"fmt"
	"math/rand/v2"
)

// A Workload is one kind of work every contender does the same way.
type Workload struct {
	Name  string // select1, point, rwtx
	Title string
	// Unit is what one operation is: a query, or a transaction; Units is
	// its plural.
	Unit, Units string
	// pgbench is pgbench's option for the same work: a built-in script, or
	// none when script is pgbench's own script for it.
	pgbench []string
	script  string
}

// Workloads are the three a run measures, by name.
func Workloads() []Workload {
	return []Workload{
		{Name: "select1", Title: "SELECT 1", Unit: "query", Units: "queries", script: selectOne + ";\n"},
		{Name: "point", Title: "point lookup (pgbench select-only)", Unit: "query", Units: "queries", pgbench: []string{"-b", "select-only"}},
		{Name: "rwtx", Title: "read-write transaction (pgbench simple-update)", Unit: "transaction", Units: "transactions", pgbench: []string{"-b", "simple-update"}},
	}
}

// WorkloadNamed returns the workload called name.
func WorkloadNamed(name string) (Workload, error) {
	for _, w := range Workloads() {
		if w.Name == name {
			return w, nil
		}
	}
	return Workload{}, fmt.Errorf("unknown workload %q (want select1, point or rwtx)", name)
}

// The statements of the workloads, as pgbench's built-in scripts have them.
const (
	selectOne   = "SELECT 1"
	pointLookup = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
	updateOne   = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"
	insertOne   = "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)"
)

// update is the random choice of one simple-update transaction, drawn as
// pgbench draws it.
type update struct{ aid, bid, tid, delta int32 }

func randomUpdate(r *rand.Rand) update {
	return update{
		aid:   randomAID(r),
		bid:   1 + r.Int32N(Scale),
		tid:   1 + r.Int32N(10*Scale),
		delta: r.Int32N(10001) - 5000,
	}
}

func randomAID(r *rand.Rand) int32 { return 1 + r.Int32N(100000*Scale) }
