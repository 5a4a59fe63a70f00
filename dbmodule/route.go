package dbmodule

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	_ ReadQuerier = (*Replicas)(nil)
	_ interface {
		BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
	} = (*Replicas)(nil)
)

// route picks the replica for a read under ctx, or nil for the primary.
func (r *Replicas) route(ctx context.Context) *replica {
	var want lsn
	if s := rywFrom(ctx); s != nil {
		var ok bool
		if want, ok = s.needed(ctx, r.primary); !ok {
			return nil
		}
	}
	n := uint32(len(r.replicas))
	first := r.next.Add(1)
	var behind *replica
	for i := range n {
		rep := r.replicas[(first+i)%n]
		if !rep.state.Load().inRotation {
			continue
		}
		if lsn(rep.replayed.Load()) >= want {
			return rep
		}
		if behind == nil {
			behind = rep
		}
	}
	if behind != nil && r.replayedOnTheSpot(ctx, behind) >= want {
		return behind
	}
	return nil
}

// replayedOnTheSpot asks rep how far it has replayed, for a read that needs
// more than its last check saw; 0 when it does not answer.
func (r *Replicas) replayedOnTheSpot(ctx context.Context, rep *replica) lsn {
	var text *string
	if err := rep.pool.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn()::text").Scan(&text); err != nil {
		if fellOver(ctx, err) {
			r.markDown(rep, err)
		}
		return 0
	}
	if text == nil {
		return 0 // promoted since its check
	}
	pos, err := parseLSN(*text)
	if err != nil {
		return 0
	}
	raise(&rep.replayed, uint64(pos))
	return lsn(rep.replayed.Load())
}

// fellOver reports whether a read's err means its replica could not be
// reached, so that the read may go to the primary: it never reached a
// server, or its connection died, which on a standby cannot have left a
// write behind. A read that failed because of its caller (its context) or
// its statement does not.
func fellOver(ctx context.Context, err error) bool {
	return ctx.Err() == nil && (neverSent(err) || connLost(err))
}

// failOver takes rep out of rotation when err means it could not be
// reached, and reports whether the read is to go to the primary.
func (r *Replicas) failOver(ctx context.Context, rep *replica, err error) bool {
	if !fellOver(ctx, err) {
		return false
	}
	r.markDown(rep, err)
	return true
}

// Query implements ReadQuerier. A read whose error comes while its rows
// are read is not sent again: rows may have been handed out already.
func (r *Replicas) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rep := r.route(ctx)
	if rep == nil {
		return r.primary.Query(ctx, sql, args...)
	}
	rows, err := rep.pool.Query(ctx, sql, args...)
	if err != nil && r.failOver(ctx, rep, err) {
		return r.primary.Query(ctx, sql, args...)
	}
	return rows, err
}

// QueryRow implements ReadQuerier.
func (r *Replicas) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rep := r.route(ctx)
	if rep == nil {
		return r.primary.QueryRow(ctx, sql, args...)
	}
	c, err := rep.pool.Acquire(ctx)
	if err != nil {
		if r.failOver(ctx, rep, err) {
			return r.primary.QueryRow(ctx, sql, args...)
		}
		return errRow{err}
	}
	row := inFlightOn(c.Conn()).newReadRow()
	*row = readRow{r: r, rep: rep, ctx: ctx, sql: sql, args: args, c: c, row: c.QueryRow(ctx, sql, args...)}
	return row
}

// Exec implements ReadQuerier; a write fails on a standby.
func (r *Replicas) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	rep := r.route(ctx)
	if rep == nil {
		return r.primary.Exec(ctx, sql, args...)
	}
	tag, err := rep.pool.Exec(ctx, sql, args...)
	if err != nil && r.failOver(ctx, rep, err) {
		return r.primary.Exec(ctx, sql, args...)
	}
	return tag, err
}

// SendBatch implements ReadQuerier. As with the primary's, a connection is
// made sure of first, and the batch then sent by the pool.
func (r *Replicas) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	rep := r.route(ctx)
	if rep == nil {
		return r.primary.SendBatch(ctx, b)
	}
	c, err := rep.pool.Acquire(ctx)
	if err != nil {
		if r.failOver(ctx, rep, err) {
			return r.primary.SendBatch(ctx, b)
		}
		return pgx.FailedBatchResults(b, err)
	}
	c.Release()
	return rep.pool.SendBatch(ctx, b)
}

// CopyFrom implements ReadQuerier; it fails on a standby, which takes no
// writes, and is there so that a ReadQuerier is a Querier.
func (r *Replicas) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error) {
	rep := r.route(ctx)
	if rep == nil {
		return r.primary.CopyFrom(ctx, table, columns, rows)
	}
	return rep.pool.CopyFrom(ctx, table, columns, rows)
}

// Begin implements ReadQuerier: a transaction on one replica, for reads
// that must see one snapshot.
func (r *Replicas) Begin(ctx context.Context) (pgx.Tx, error) { return r.BeginTx(ctx, pgx.TxOptions{}) }

// BeginTx is Begin with options, which InTx uses.
func (r *Replicas) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	rep := r.route(ctx)
	if rep == nil {
		return begin(ctx, r.primary, opts)
	}
	tx, err := rep.pool.BeginTx(ctx, opts)
	if err != nil && r.failOver(ctx, rep, err) {
		return begin(ctx, r.primary, opts)
	}
	return tx, err
}

// readRow is a replica's QueryRow row: Scan reads it, releases its
// connection, and reads from the primary instead when the replica could not
// be reached.
type readRow struct {
	r    *Replicas
	rep  *replica
	ctx  context.Context
	sql  string
	args []any
	c    *pgxpool.Conn
	row  pgx.Row
}

func (row *readRow) Scan(dest ...any) error {
	if row.c == nil {
		return errScannedTwice
	}
	_, err := scanAndRelease(row.c, row.row, dest, false)
	row.c, row.row = nil, nil
	if err != nil && row.r.failOver(row.ctx, row.rep, err) {
		err = row.r.primary.QueryRow(row.ctx, row.sql, row.args...).Scan(dest...)
	}
	row.ctx, row.args = nil, nil // let them be collected
	return err
}

// newReadRow cuts a readRow from the connection's slab, as newRow does.
func (f *inFlight) newReadRow() *readRow {
	if len(f.readRows) == 0 {
		f.readRows = make([]readRow, 64)
	}
	row := &f.readRows[len(f.readRows)-1]
	f.readRows = f.readRows[:len(f.readRows)-1]
	return row
}
