package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A TxOption configures InTx.
type TxOption func(*txConfig)

type txConfig struct {
	opts     pgx.TxOptions
	attempts int
}

// DefaultTxAttempts is how many times InTx runs a transaction that keeps
// failing with a serialization failure or a deadlock.
const DefaultTxAttempts = 5

// ReadOnly makes the transaction read-only.
func ReadOnly() TxOption {
	return func(c *txConfig) { c.opts.AccessMode = pgx.ReadOnly }
}

// Isolation sets the transaction's isolation level, such as pgx.Serializable.
func Isolation(level pgx.TxIsoLevel) TxOption {
	return func(c *txConfig) { c.opts.IsoLevel = level }
}

// MaxAttempts bounds how many times InTx runs a transaction that fails with
// a serialization failure or a deadlock; 1 turns retrying off.
func MaxAttempts(n int) TxOption {
	return func(c *txConfig) { c.attempts = max(n, 1) }
}

// Transactor runs functions in transactions on the app's Querier; Module
// provides one. With a fake Querier it uses the fake's Begin.
type Transactor struct{ q Querier }

// NewTransactor returns a Transactor over q.
func NewTransactor(q Querier) *Transactor { return &Transactor{q: q} }

// InTx is InTx on the Transactor's Querier.
func (t *Transactor) InTx(ctx context.Context, fn func(Querier) error, opts ...TxOption) error {
	return InTx(ctx, t.q, fn, opts...)
}

// InTx runs fn in a transaction on q: it commits when fn returns nil, and
// rolls back when fn returns an error or panics (and then panics again).
//
// When the transaction fails with a serialization failure (40001) or a
// deadlock (40P01), from fn or from the commit, InTx runs it again, up to
// DefaultTxAttempts times in all, waiting a little longer each time; fn must
// therefore be safe to run again, and should wrap the errors it returns with
// %w so that InTx can see them. ctx bounds the whole, waits included.
//
// When q is itself a transaction, fn runs in a savepoint, which is never
// retried: a conflict dooms the enclosing transaction, whose own InTx retries.
func InTx(ctx context.Context, q Querier, fn func(Querier) error, opts ...TxOption) error {
	c := txConfig{attempts: DefaultTxAttempts}
	for _, o := range opts {
		o(&c)
	}
	_, nested := q.(pgx.Tx)
	backoff := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := runTx(ctx, q, c.opts, fn)
		if err == nil || nested || !retryable(err) {
			return err
		}
		if attempt >= c.attempts {
			return fmt.Errorf("transaction failed %d times: %w", attempt, err)
		}
		// Jitter keeps the transactions that collided from colliding again.
		wait := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-ctx.Done():
			wait.Stop()
			return fmt.Errorf("transaction not retried: %w", errors.Join(ctx.Err(), err))
		case <-wait.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

func runTx(ctx context.Context, q Querier, opts pgx.TxOptions, fn func(Querier) error) (err error) {
	tx, err := begin(ctx, q, opts)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			rollback(ctx, tx) //nolint:errcheck // the panic matters more
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rerr := rollback(ctx, tx); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func begin(ctx context.Context, q Querier, opts pgx.TxOptions) (pgx.Tx, error) {
	if b, ok := q.(interface {
		BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
	}); ok {
		return b.BeginTx(ctx, opts)
	}
	if opts != (pgx.TxOptions{}) {
		// A savepoint inherits its transaction's mode.
		return nil, errors.New("isolation and read-only options need a pool or a connection, not a transaction")
	}
	return q.Begin(ctx)
}

// rollback rolls tx back even when ctx is done, so that the connection goes
// back to the pool clean rather than being closed.
func rollback(ctx context.Context, tx pgx.Tx) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("roll back: %w", err)
	}
	return nil
}

// retryable reports whether err means that running the same transaction
// again may succeed.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
