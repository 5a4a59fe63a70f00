package dbmodule_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// txPool opens a pool on a database of the test's own with an accounts table.
func txPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := dbmodule.Open(ctx, pg.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
		INSERT INTO accounts VALUES (1, 100), (2, 100)`); err != nil {
		t.Fatal(err)
	}
	return pool
}

func balance(t *testing.T, q dbmodule.Querier, id int) int {
	t.Helper()
	var b int
	if err := q.QueryRow(context.Background(), "SELECT balance FROM accounts WHERE id = $1", id).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInTxCommitsAndRollsBack(t *testing.T) {
	t.Parallel()
	pool := txPool(t)
	ctx := context.Background()

	if err := dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
		_, err := q.Exec(ctx, "UPDATE accounts SET balance = balance - 10 WHERE id = 1")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b := balance(t, pool, 1); b != 90 {
		t.Errorf("after a committed transaction balance = %d, want 90", b)
	}

	errRefused := errors.New("refused")
	err := dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
		if _, err := q.Exec(ctx, "UPDATE accounts SET balance = 0 WHERE id = 1"); err != nil {
			return err
		}
		return errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Errorf("InTx = %v, want fn's error", err)
	}
	if b := balance(t, pool, 1); b != 90 {
		t.Errorf("after a failed transaction balance = %d, want 90", b)
	}
}

func TestInTxRollsBackAndRepanicsOnPanic(t *testing.T) {
	t.Parallel()
	pool := txPool(t)
	ctx := context.Background()
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic passed on", p)
			}
		}()
		dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error { //nolint:errcheck // it panics
			if _, err := q.Exec(ctx, "UPDATE accounts SET balance = 0 WHERE id = 1"); err != nil {
				t.Fatal(err)
			}
			panic("boom")
		})
	}()
	if b := balance(t, pool, 1); b != 100 {
		t.Errorf("after a panic balance = %d, want the update rolled back", b)
	}
	if n := pool.Stat().AcquiredConns(); n != 0 {
		t.Errorf("%d connections still acquired after the panic", n)
	}
}

func TestInTxHonoursContext(t *testing.T) {
	t.Parallel()
	pool := txPool(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := dbmodule.InTx(canceled, pool, func(dbmodule.Querier) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Errorf("InTx with a canceled context = %v (fn ran: %v)", err, ran)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
		_, err := q.Exec(ctx, "SELECT pg_sleep(10)")
		return err
	})
	if err == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("InTx past its deadline = %v", err)
	}
	// The interrupted connection is closed and leaves the pool.
	dbtest.WaitFor(t, "the connection to be released", func() bool { return pool.Stat().AcquiredConns() == 0 })
}

func TestInTxOptions(t *testing.T) {
	t.Parallel()
	pool := txPool(t)
	ctx := context.Background()
	var level string
	if err := dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
		return q.QueryRow(ctx, "SHOW transaction_isolation").Scan(&level)
	}, dbmodule.Isolation(pgx.Serializable)); err != nil || level != "serializable" {
		t.Errorf("isolation = %q, %v; want serializable", level, err)
	}
	err := dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
		_, err := q.Exec(ctx, "UPDATE accounts SET balance = 0")
		return err
	}, dbmodule.ReadOnly())
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Errorf("write in a read-only transaction = %v, want SQLSTATE 25006", err)
	}
}

func TestInTxNestsAsSavepoint(t *testing.T) {
	t.Parallel()
	pool := txPool(t)
	ctx := context.Background()
	errInner := errors.New("inner")
	err := dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
		if _, err := q.Exec(ctx, "UPDATE accounts SET balance = 1 WHERE id = 1"); err != nil {
			return err
		}
		inner := dbmodule.InTx(ctx, q, func(q dbmodule.Querier) error {
			if _, err := q.Exec(ctx, "UPDATE accounts SET balance = 2 WHERE id = 2"); err != nil {
				return err
			}
			return errInner
		})
		if !errors.Is(inner, errInner) {
			t.Errorf("inner InTx = %v", inner)
		}
		if err := dbmodule.InTx(ctx, q, nil, dbmodule.ReadOnly()); err == nil {
			t.Error("options on a savepoint were accepted")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := balance(t, pool, 1), balance(t, pool, 2); a != 1 || b != 100 {
		t.Errorf("balances = %d, %d; want the outer update kept and the inner one rolled back", a, b)
	}
}

// Two serializable transactions that each read what the other writes: one
// of them fails with a serialization failure, and InTx runs it again.
func TestInTxRetriesSerializationFailures(t *testing.T) {
	t.Parallel()
	pool := txPool(t)
	ctx := context.Background()
	var attempts atomic.Int32
	var bothRead sync.WaitGroup
	bothRead.Add(2)
	moveAll := func(from, to int) error {
		first := true
		return dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
			attempts.Add(1)
			var total int
			if err := q.QueryRow(ctx, "SELECT sum(balance) FROM accounts").Scan(&total); err != nil {
				return err
			}
			if first { // make the first attempts overlap
				first = false
				bothRead.Done()
				bothRead.Wait()
			}
			_, err := q.Exec(ctx, "UPDATE accounts SET balance = balance + $1 WHERE id = $2", total, to)
			return err
		}, dbmodule.Isolation(pgx.Serializable))
	}
	errs := make(chan error, 2)
	go func() { errs <- moveAll(1, 2) }()
	go func() { errs <- moveAll(2, 1) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("InTx = %v, want success after a retry", err)
		}
	}
	if n := attempts.Load(); n < 3 {
		t.Errorf("%d attempts, want at least 3: no serialization failure was retried", n)
	}
	// Run one after the other, either order, the first adds the total of
	// 200 to its account and the second the new total of 400 to the other:
	// 800 in all. Interleaved, both would add 200: 600.
	if sum := balance(t, pool, 1) + balance(t, pool, 2); sum != 800 {
		t.Errorf("sum of balances = %d, want 800: the transactions did not serialise", sum)
	}
}

// Two transactions that lock the same rows in opposite orders deadlock; the
// server aborts one, and InTx runs it again.
func TestInTxRetriesDeadlocks(t *testing.T) {
	t.Parallel()
	pool := txPool(t)
	ctx := context.Background()
	var attempts atomic.Int32
	var bothLocked sync.WaitGroup
	bothLocked.Add(2)
	transfer := func(first, second int) error {
		overlap := true
		return dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
			attempts.Add(1)
			if _, err := q.Exec(ctx, "UPDATE accounts SET balance = balance - 1 WHERE id = $1", first); err != nil {
				return err
			}
			if overlap {
				overlap = false
				bothLocked.Done()
				bothLocked.Wait()
			}
			_, err := q.Exec(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = $1", second)
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- transfer(1, 2) }()
	go func() { errs <- transfer(2, 1) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("InTx = %v, want success after a retry", err)
		}
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("%d attempts, want 3: one deadlock victim run again", n)
	}
	if a, b := balance(t, pool, 1), balance(t, pool, 2); a != 100 || b != 100 {
		t.Errorf("balances = %d, %d; want both transfers applied once", a, b)
	}
}

func TestInTxGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	pool := txPool(t)
	conflict := &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
	var attempts int
	err := dbmodule.InTx(context.Background(), pool, func(dbmodule.Querier) error {
		attempts++
		return conflict
	}, dbmodule.MaxAttempts(3))
	if attempts != 3 || !errors.Is(err, conflict) {
		t.Errorf("InTx = %v after %d attempts, want the conflict after 3", err, attempts)
	}
	attempts = 0
	other := errors.New("not a conflict")
	if err := dbmodule.InTx(context.Background(), pool, func(dbmodule.Querier) error { attempts++; return other }); !errors.Is(err, other) || attempts != 1 {
		t.Errorf("InTx = %v after %d attempts, want other errors returned at once", err, attempts)
	}
}

func TestModuleProvidesTransactor(t *testing.T) {
	t.Parallel()
	var tx *dbmodule.Transactor
	app := fxtest.New(t, dbmodule.Module, pg.Module(t), fx.Populate(&tx))
	app.RequireStart()
	defer app.RequireStop()
	var n int
	if err := tx.InTx(context.Background(), func(q dbmodule.Querier) error {
		return q.QueryRow(context.Background(), "SELECT 1").Scan(&n)
	}, dbmodule.ReadOnly()); err != nil || n != 1 {
		t.Errorf("Transactor.InTx = %d, %v", n, err)
	}
}
