package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// run applies mg (up) or rolls it back (down), and records that in the
// version table: in one transaction, or, for a NO TRANSACTION migration,
// statement by statement and then the record.
func (m *Migrator) run(ctx context.Context, conn *pgx.Conn, table string, mg *migration, up bool) (Result, error) {
	sec := mg.down
	if up {
		sec = mg.up
	}
	begin := time.Now()
	var err error
	if mg.noTx {
		err = runAlone(ctx, conn, table, mg.version, sec, up)
	} else {
		err = runInTx(ctx, conn, table, mg.version, sec, up)
	}
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", mg.file, err)
	}
	return Result{Version: mg.version, File: mg.file, Duration: time.Since(begin)}, nil
}

// runInTx sends the whole section as one simple-protocol query inside a
// transaction: the server splits it into statements with its own lexer,
// so dollar-quoted bodies, strings and comments need no help from us.
func runInTx(ctx context.Context, conn *pgx.Conn, table string, version int64, sec section, up bool) (err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		// With ctx done, closing the connection rolls back instead, at once.
		if err != nil && ctx.Err() == nil {
			tx.Rollback(ctx) //nolint:errcheck // err says why
		}
	}()
	if !sec.empty() {
		if done, err := exec(ctx, conn, sec.text); err != nil {
			// The server ran the statements in order, up to the one that failed.
			line := 0
			if done < len(sec.stmts) {
				line = sec.stmts[done].line
			}
			return sqlError(err, sec.text, sec.line, line)
		}
	}
	if err := record(ctx, tx, table, version, up); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// runAlone sends the statements one by one, each its own implicit
// transaction, as CREATE INDEX CONCURRENTLY and the like require.
func runAlone(ctx context.Context, conn *pgx.Conn, table string, version int64, sec section, up bool) error {
	for i, st := range sec.stmts {
		if _, err := exec(ctx, conn, st.sql); err != nil {
			err = sqlError(err, st.sql, st.line, st.line)
			if i > 0 {
				return fmt.Errorf("%w (NO TRANSACTION: the %d statements before it stay done, and the version is not recorded)", err, i)
			}
			return err
		}
	}
	return record(ctx, conn, table, version, up)
}

// exec sends sql as it is, in one simple-protocol query, discards what
// its statements return, and counts those that completed.
func exec(ctx context.Context, conn *pgx.Conn, sql string) (completed int, err error) {
	mrr := conn.PgConn().Exec(ctx, sql)
	for mrr.NextResult() {
		if _, err := mrr.ResultReader().Close(); err == nil {
			completed++
		}
	}
	return completed, mrr.Close()
}

// sqlError adds to err the file line of the statement at fault: where the
// server's error position points, when it gives one, in sql, which starts
// on file line first; else line, where the statement starts (0: unknown).
func sqlError(err error, sql string, first, line int) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Position > 0 {
		line = first + newlinesBefore(sql, int(pe.Position))
	}
	if line == 0 {
		return err
	}
	return fmt.Errorf("line %d: %w", line, err)
}

// newlinesBefore counts the newlines before the pos-th character of s, as
// the server counts characters: 1-based, runes rather than bytes.
func newlinesBefore(s string, pos int) int {
	n, i := 0, 1
	for _, r := range s {
		if i >= pos {
			break
		}
		if r == '\n' {
			n++
		}
		i++
	}
	return n
}
