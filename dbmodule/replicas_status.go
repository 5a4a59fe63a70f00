package dbmodule

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// This file tells readiness checks and metrics how the replicas are.

// A ReplicaStatus describes one replica for readiness checks and metrics.
type ReplicaStatus struct {
	Index      int    // 1-based, in DATABASE_READ_URL's order
	Addr       string // host:port; not for /readyz, which must not show addresses
	InRotation bool
	Primary    bool          // out of rotation because it is the primary (a URL listing every node lists it too)
	Reason     string        // why not in rotation
	Lag        time.Duration // replay lag at the last check, at least
	Pool       *pgxpool.Pool
}

// Status describes each replica, in DATABASE_READ_URL's order.
func (r *Replicas) Status() []ReplicaStatus {
	out := make([]ReplicaStatus, len(r.replicas))
	for i, rep := range r.replicas {
		s := rep.state.Load()
		out[i] = ReplicaStatus{Index: rep.index, Addr: rep.addr, InRotation: s.inRotation, Primary: s.primary, Reason: s.reason, Lag: s.lag, Pool: rep.pool}
	}
	return out
}

// Check reports, for readiness, the replicas out of rotation, by index,
// never by address: nil when every one is in rotation, or is the primary.
func (r *Replicas) Check(context.Context) error {
	var out []string
	in := 0
	for _, s := range r.Status() {
		switch {
		case s.InRotation:
			in++
		case !s.Primary:
			out = append(out, fmt.Sprintf("replica %d %s", s.Index, s.Reason))
		}
	}
	if len(out) == 0 {
		return nil
	}
	where := "reads go to the primary"
	if in > 0 {
		where = fmt.Sprintf("reads go to the other %d", in)
	}
	return fmt.Errorf("%s; %s", strings.Join(out, "; "), where)
}
