package dbmodule

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// WithReadYourWrites makes the reads of the request ctx belongs to see its
// own writes: once a write through the primary commits under ctx (or a
// context derived from it), reads through ReadQuerier go to a replica only
// when it has replayed past that commit, and to the primary otherwise.
// Without it, reads may go to a replica that has not replayed a write the
// request has just made.
//
//	ctx = dbmodule.WithReadYourWrites(r.Context())
//	err := tx.InTx(ctx, createOrder) // commits through the primary
//	rows, err := reads.Query(ctx, listOrders) // sees the new order
//
// The pool's Tracer counts commits and autocommit writes under ctx, which
// costs nothing; the first read after writes asks the primary for its WAL
// insert position (pg_current_wal_insert_lsn(), which every committed
// write precedes), once, and a replica's replay position is known from its
// last check or asked on the spot. With one server it changes nothing.
func WithReadYourWrites(ctx context.Context) context.Context {
	if rywFrom(ctx) != nil {
		return ctx
	}
	return context.WithValue(ctx, rywKey{}, &rywState{})
}

type rywKey struct{}

// rywState is one request's writes: counted by the Tracer, and resolved
// into a WAL position when a read needs it.
type rywState struct {
	writes   atomic.Uint64 // writes committed so far
	resolved atomic.Uint64 // writes that lsn covers
	lsn      atomic.Uint64 // a WAL position past every resolved write
}

func rywFrom(ctx context.Context) *rywState {
	s, _ := ctx.Value(rywKey{}).(*rywState)
	return s
}

// noteWrite counts a committed write.
func (s *rywState) noteWrite() { s.writes.Add(1) }

// needed returns the WAL position a replica must have replayed for a read
// to see the request's writes, asking the primary when writes committed
// since it last did; 0 when the request has written nothing. ok is false
// when the primary could not say: the read must go to the primary.
func (s *rywState) needed(ctx context.Context, primary Querier) (l lsn, ok bool) {
	w := s.writes.Load()
	if w == 0 {
		return 0, true
	}
	if s.resolved.Load() < w {
		var text string
		if err := primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&text); err != nil {
			return 0, false
		}
		pos, err := parseLSN(text)
		if err != nil {
			return 0, false
		}
		raise(&s.lsn, uint64(pos))
		raise(&s.resolved, w)
	}
	return lsn(s.lsn.Load()), true
}

// raise sets v to n if n is greater.
func raise(v *atomic.Uint64, n uint64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// noteWrite tells ctx's read-your-writes state, if any, that a statement
// on the primary committed a write: a COMMIT, or anything but a read
// outside a transaction. Reads (the common case) cost a comparison.
func (t *Tracer) noteWrite(ctx context.Context, conn *pgx.Conn, tag pgconn.CommandTag) {
	if t.role == RoleReplica || tag.Select() || conn.PgConn().TxStatus() != 'I' {
		return
	}
	switch tag.String() {
	case "ROLLBACK", "SHOW", "SET", "RESET", "":
		return
	}
	if s := rywFrom(ctx); s != nil {
		s.noteWrite()
	}
}
