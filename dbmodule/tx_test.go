package dbmodule_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
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
	t.Cleanup(func() {
		// Bounded, so that a transaction left open fails the test instead
		// of hanging it.
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := dbmodule.Close(ctx, pool); err != nil {
			t.Error(err)
		}
	})
	if _, err := pool.Exec(ctx, `CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
		INSERT INTO accounts VALUES (1, 100), (2, 100)`); err != nil {
		t.Fatal(err)
	}
	return pool
}

// watcher opens a connection of its own to the pool's database, to watch
// the pool's backends from outside the pool.
func watcher(t *testing.T, pool *pgxpool.Pool) *pgx.Conn {
	t.Helper()
	cc := pool.Config().ConnConfig
	cc.Tracer = nil // its queries are not the pool's
	conn, err := pgx.ConnectConfig(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
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
		if err := dbmodule.InTx(ctx, q, func(dbmodule.Querier) error { return nil }, dbmodule.ReadOnly()); err == nil {
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

// t.Fatal and t.FailNow in fn end its goroutine with runtime.Goexit: no
// error comes back and nothing panics, but the transaction must still be
// rolled back, its locks dropped and its connection released.
func TestInTxRollsBackWhenFnEndsItsGoroutine(t *testing.T) {
	t.Parallel()
	pool := txPool(t)
	watch := watcher(t, pool)
	ctx := context.Background()
	var pid uint32
	done := make(chan struct{})
	go func() {
		defer close(done)
		dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error { //nolint:errcheck // it never returns
			if err := q.QueryRow(ctx, "UPDATE accounts SET balance = 0 WHERE id = 1 RETURNING pg_backend_pid()").Scan(&pid); err != nil {
				t.Error(err)
				return err
			}
			runtime.Goexit()
			return nil
		})
		t.Error("InTx returned although fn ended its goroutine")
	}()
	<-done

	// The rollback's answer came before InTx's goroutine ended, so the
	// server has already updated the backend's state.
	var state string
	var locks int
	if err := watch.QueryRow(ctx, `SELECT a.state, (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid)
		FROM pg_stat_activity a WHERE a.pid = $1`, pid).Scan(&state, &locks); err != nil {
		t.Fatal(err)
	}
	if state != "idle" || locks != 0 {
		t.Errorf("backend %d is %q holding %d locks, want idle with none", pid, state, locks)
	}
	if b := balance(t, watch, 1); b != 100 {
		t.Errorf("balance = %d, want the update rolled back", b)
	}
	dbtest.WaitFor(t, "the connection to be released", func() bool { return pool.Stat().AcquiredConns() == 0 })
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := dbmodule.Close(closeCtx, pool); err != nil {
		t.Errorf("Close after fn ended its goroutine: %v", err)
	}
}

// loggingQuerier is the kind of decorator apps write: it records each
// statement and passes it on, and says what it wraps with Unwrap.
type loggingQuerier struct {
	dbmodule.Querier
	log *[]string
}

func (l loggingQuerier) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	*l.log = append(*l.log, sql)
	return l.Querier.Exec(ctx, sql, args...)
}

func (l loggingQuerier) Begin(ctx context.Context) (pgx.Tx, error) {
	*l.log = append(*l.log, "begin")
	return l.Querier.Begin(ctx)
}

func (l loggingQuerier) Unwrap() dbmodule.Querier { return l.Querier }

// A conflict inside a savepoint dooms the enclosing transaction, so only
// the outermost InTx may retry, also when the savepoint's InTx gets the
// transaction through wrappers.
func TestInTxRetriesOnlyTheOutermostThroughWrappers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("a wrapped transaction", func(t *testing.T) {
		t.Parallel()
		pool := txPool(t)
		var log []string
		var outer, inner int
		err := dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
			outer++
			var b int
			if err := q.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = 1").Scan(&b); err != nil {
				return err // that took the transaction's snapshot
			}
			if outer == 1 { // a concurrent update after the snapshot
				if _, err := pool.Exec(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = 1"); err != nil {
					return err
				}
			}
			wrapped := loggingQuerier{loggingQuerier{q, &log}, &log} // a chain of two
			return dbmodule.InTx(ctx, wrapped, func(q dbmodule.Querier) error {
				inner++
				// Fails with 40001 in the first attempt, savepoint or not.
				_, err := q.Exec(ctx, "UPDATE accounts SET balance = balance - 10 WHERE id = 1")
				return err
			})
		}, dbmodule.Isolation(pgx.RepeatableRead))
		if err != nil {
			t.Fatal(err)
		}
		if outer != 2 || inner != 2 {
			t.Errorf("outer ran %d times and inner %d, want 2 and 2: the savepoint must not be retried", outer, inner)
		}
		if b := balance(t, pool, 1); b != 91 {
			t.Errorf("balance = %d, want 91", b)
		}
		if len(log) != 4 { // two layers, two savepoints
			t.Errorf("the wrappers logged %q, want 4 begins", log)
		}
	})

	t.Run("a wrapped pool", func(t *testing.T) {
		t.Parallel()
		pool := txPool(t)
		var log []string
		attempts := 0
		err := dbmodule.InTx(ctx, loggingQuerier{pool, &log}, func(dbmodule.Querier) error {
			if attempts++; attempts == 1 {
				return &pgconn.PgError{Code: "40001"}
			}
			return nil
		})
		if err != nil || attempts != 2 {
			t.Errorf("InTx on a wrapped pool = %v after %d attempts, want a retry", err, attempts)
		}
		err = dbmodule.InTx(ctx, loggingQuerier{pool, &log}, func(dbmodule.Querier) error { return nil }, dbmodule.ReadOnly())
		if err == nil || !strings.Contains(err.Error(), "BeginTx") {
			t.Errorf("options on a wrapper without BeginTx = %v, want an error that says what is missing", err)
		}
	})
}

// commitsTable adds a table whose rows make COMMIT wait for advisory lock 1:
// a deferred constraint trigger runs at commit, so COMMIT is in flight, and
// stays there, for as long as another session holds the lock.
func commitsTable(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `
		CREATE TABLE commits (id int PRIMARY KEY);
		CREATE FUNCTION wait_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_advisory_xact_lock(1);
			RETURN NULL;
		END $$;
		CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON commits
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_at_commit()`); err != nil {
		t.Fatal(err)
	}
}

// commitWaiting waits until backend pid runs COMMIT and waits for the lock.
func commitWaiting(t *testing.T, watch *pgx.Conn, pid uint32) {
	t.Helper()
	dbtest.WaitFor(t, "COMMIT to wait for the lock", func() bool {
		var waiting bool
		err := watch.QueryRow(context.Background(), `SELECT lower(query) = 'commit' AND wait_event_type = 'Lock'
			FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&waiting)
		return err == nil && waiting
	})
}

func rowCount(t *testing.T, q dbmodule.Querier) int {
	t.Helper()
	var n int
	if err := q.QueryRow(context.Background(), "SELECT count(*) FROM commits").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// When the connection dies, or ctx ends, after COMMIT was sent and before
// its answer came, InTx cannot know whether the transaction committed: it
// says so, and does not run fn again.
func TestInTxCommitOutcomeUnknown(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		// interrupt breaks off the COMMIT in flight on backend pid.
		interrupt func(t *testing.T, watch *pgx.Conn, pid uint32, cancel context.CancelFunc)
		// rows is how many rows the server committed in the end; -1 when
		// that is a race: after ctx ends, pgx closes the connection and sends
		// a cancel request, which the server may get before or after the
		// lock is released below.
		rows int
	}{
		{"backend terminated", func(t *testing.T, watch *pgx.Conn, pid uint32, _ context.CancelFunc) {
			var ok bool
			if err := watch.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
				t.Fatalf("pg_terminate_backend = %v, %v", ok, err)
			}
		}, 0},
		{"context ended", func(_ *testing.T, _ *pgx.Conn, _ uint32, cancel context.CancelFunc) { cancel() }, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			pool := txPool(t)
			commitsTable(t, pool)
			watch := watcher(t, pool)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, err := watch.Exec(ctx, "SELECT pg_advisory_lock(1)"); err != nil {
				t.Fatal(err)
			}
			pids := make(chan uint32, 1)
			result := make(chan error, 1)
			var runs atomic.Int32
			go func() {
				result <- dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
					runs.Add(1)
					var pid uint32
					if err := q.QueryRow(ctx, "INSERT INTO commits VALUES (1) RETURNING pg_backend_pid()").Scan(&pid); err != nil {
						return err
					}
					select {
					case pids <- pid:
					default: // a second run, reported below
					}
					return nil
				})
			}()
			pid := <-pids
			commitWaiting(t, watch, pid)
			c.interrupt(t, watch, pid, cancel)
			err := <-result
			t.Logf("InTx = %v", err)
			if !errors.Is(err, dbmodule.ErrCommitOutcomeUnknown) {
				t.Errorf("InTx = %v, want ErrCommitOutcomeUnknown", err)
			}
			if n := runs.Load(); n != 1 {
				t.Errorf("fn ran %d times, want once: a commit that may have happened must not be run again", n)
			}
			if _, err := watch.Exec(context.Background(), "SELECT pg_advisory_unlock(1)"); err != nil {
				t.Fatal(err)
			}
			// The backend ends once it is done with COMMIT, which settles it.
			dbtest.WaitFor(t, "the backend to end", func() bool {
				var alive bool
				err := watch.QueryRow(context.Background(), "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&alive)
				return err == nil && !alive
			})
			n := rowCount(t, watch)
			t.Logf("the server committed %d rows", n)
			if c.rows >= 0 && n != c.rows {
				t.Errorf("the server committed %d rows, want %d", n, c.rows)
			}
			dbtest.WaitFor(t, "the connection to be released", func() bool { return pool.Stat().AcquiredConns() == 0 })
		})
	}
}

// A serialization failure that the server reports at COMMIT is a clean
// failure: the transaction was rolled back, and InTx runs it again.
func TestInTxRetriesSerializationFailureAtCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// fn's first run and a concurrent transaction each read both accounts
	// and update one (write skew); the other commits first, so this one's
	// COMMIT fails with 40001. fn itself never fails.
	fnFailingAtCommit := func(pool *pgxpool.Pool, runs *int) func(dbmodule.Querier) error {
		fn := func(q dbmodule.Querier) error {
			*runs++
			var other pgx.Tx
			if *runs == 1 {
				var err error
				if other, err = pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}); err != nil {
					return err
				}
				defer other.Rollback(ctx) //nolint:errcheck // committed below
				if _, err := other.Exec(ctx, "SELECT sum(balance) FROM accounts"); err != nil {
					return err
				}
			}
			if _, err := q.Exec(ctx, "SELECT sum(balance) FROM accounts"); err != nil {
				return err
			}
			if other != nil {
				if _, err := other.Exec(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = 1"); err != nil {
					return err
				}
			}
			if _, err := q.Exec(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = 2"); err != nil {
				return err
			}
			if other != nil {
				return other.Commit(ctx)
			}
			return nil
		}
		return func(q dbmodule.Querier) error {
			err := fn(q)
			if err != nil {
				t.Errorf("fn = %v, want the conflict at commit only", err)
			}
			return err
		}
	}

	pool := txPool(t)
	runs := 0
	err := dbmodule.InTx(ctx, pool, fnFailingAtCommit(pool, &runs), dbmodule.Isolation(pgx.Serializable), dbmodule.MaxAttempts(1))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "40001" || errors.Is(err, dbmodule.ErrCommitOutcomeUnknown) {
		t.Errorf("InTx with one attempt = %v, want a serialization failure at commit, not an unknown outcome", err)
	}

	pool = txPool(t)
	runs = 0
	if err := dbmodule.InTx(ctx, pool, fnFailingAtCommit(pool, &runs), dbmodule.Isolation(pgx.Serializable)); err != nil || runs != 2 {
		t.Errorf("InTx = %v after %d runs, want success on the second", err, runs)
	}
	if a, b := balance(t, pool, 1), balance(t, pool, 2); a != 101 || b != 101 {
		t.Errorf("balances = %d, %d; want 101, 101: each update once", a, b)
	}
}

func TestInTxRefusesNil(t *testing.T) {
	t.Parallel()
	pool := txPool(t)
	if err := dbmodule.InTx(context.Background(), nil, func(dbmodule.Querier) error { return nil }); err == nil || !strings.Contains(err.Error(), "q is nil") {
		t.Errorf("InTx on a nil Querier = %v", err)
	}
	if err := dbmodule.InTx(context.Background(), pool, nil); err == nil || !strings.Contains(err.Error(), "fn is nil") {
		t.Errorf("InTx with a nil fn = %v", err)
	}
}

// A transaction whose connection dies before COMMIT is sent (a failover, a
// restart, pg_terminate_backend) was aborted by the server: InTx runs it
// again on a new connection, and its write lands once.
func TestInTxRunsAgainATransactionLostBeforeCommit(t *testing.T) {
	pool := txPool(t)
	ctx := context.Background()
	admin, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Release()
	runs := 0
	err = dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
		runs++
		if _, err := q.Exec(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = 1"); err != nil {
			return err
		}
		if runs == 1 {
			var pid uint32
			if err := q.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				return err
			}
			if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
				t.Fatal(err)
			}
			_, err := q.Exec(ctx, "SELECT 1") // finds its connection gone
			return fmt.Errorf("after the kill: %w", err)
		}
		return nil
	})
	if err != nil || runs != 2 {
		t.Fatalf("InTx = %v after %d runs; want success on the second", err, runs)
	}
	var balance int
	if err := pool.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = 1").Scan(&balance); err != nil || balance != 101 {
		t.Errorf("balance = %d, %v; want 101: the first run's write aborted, the second's committed", balance, err)
	}
}
