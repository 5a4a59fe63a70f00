package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The acquire timeout (DB_ACQUIRE_TIMEOUT) bounds how long a caller waits for
// a free connection, apart from the caller's own deadline, as HikariCP's
// connectionTimeout does and as pgx's own AcquireTimeout proposal
// (jackc/pgx#2350) would.
//
// pgxpool waits on the context its AcquireTracer returns and, when that
// context ends, returns the context's Err(). So the limiter's tracer returns
// a child of the caller's context that a timer cancels after the timeout,
// and whose Err() is a *PoolExhaustedError when the timer, not the caller,
// ended it. Every method of the pool (Exec, Query, QueryRow, Begin,
// SendBatch, CopyFrom, Acquire) returns that error as it is, so the pool
// itself stays the Querier, with no wrapper.
//
// The timer stops as soon as the acquire has a connection slot: when it
// opens a new connection (BeforeConnect) or takes an idle one (ShouldPing).
// Opening one is DB_CONNECT_TIMEOUT's to bound, its health ping
// DB_PING_TIMEOUT's: a slow database is not an exhausted pool. Each acquire
// costs its context, its timer and their stopping: six allocations, about
// 500 bytes.

// ErrPoolExhausted is what errors.Is finds in the error of an acquire that
// waited DB_ACQUIRE_TIMEOUT for a free connection while every one was in
// use. The error is a *PoolExhaustedError.
var ErrPoolExhausted = errors.New("database pool exhausted")

// A PoolExhaustedError says that no connection came free within
// DB_ACQUIRE_TIMEOUT while the caller's own context was live: every
// connection was in use, or being opened for another caller, because of
// slow queries, a burst, or leaked connections (see DB_LEAK_THRESHOLD).
// errors.Is finds ErrPoolExhausted and context.DeadlineExceeded in it; an
// unreachable database or a refused login is a different error.
type PoolExhaustedError struct {
	Timeout    time.Duration // DB_ACQUIRE_TIMEOUT
	Waited     time.Duration // how long this caller waited
	InUse      int32         // connections acquired by callers
	Connecting int32         // connections being opened
	Max        int32         // the pool's size, DB_MAX_CONNS
	Waiting    int64         // callers waiting for a connection, this one included
}

func (e *PoolExhaustedError) Error() string {
	return fmt.Sprintf("database pool exhausted: no connection free within DB_ACQUIRE_TIMEOUT (%s): %d of %d in use, %d being opened, %d callers waiting",
		e.Timeout, e.InUse, e.Max, e.Connecting, e.Waiting)
}

// Is makes errors.Is(err, ErrPoolExhausted) hold.
func (e *PoolExhaustedError) Is(target error) bool { return target == ErrPoolExhausted }

// Unwrap makes errors.Is(err, context.DeadlineExceeded) hold: the wait for
// a connection ran out of time.
func (e *PoolExhaustedError) Unwrap() error { return context.DeadlineExceeded }

// acquireLimiter is the pool's AcquireTracer for DB_ACQUIRE_TIMEOUT, and the
// source of its acquire metrics.
type acquireLimiter struct {
	timeout  time.Duration
	waiting  atomic.Int64 // callers in Acquire
	timeouts atomic.Int64
	wait     histogram
	// state is the pool's last counts, for timeout errors: the callers a
	// saturated pool times out together share one pgxpool.Stat, which locks
	// the pool, rather than each wait for it.
	state atomic.Pointer[poolState]
}

type poolState struct {
	at                     time.Time
	inUse, connecting, max int32
}

// stateTTL is how old a poolState may be for a timeout error.
const stateTTL = 10 * time.Millisecond

var _ pgxpool.AcquireTracer = (*acquireLimiter)(nil)

func newAcquireLimiter(timeout time.Duration) *acquireLimiter {
	return &acquireLimiter{timeout: timeout}
}

// TraceAcquireStart implements pgxpool.AcquireTracer.
func (l *acquireLimiter) TraceAcquireStart(ctx context.Context, pool *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	l.waiting.Add(1)
	c := &acquireCtx{caller: ctx, limiter: l, pool: pool, start: time.Now()}
	c.Context, c.cancel = context.WithCancelCause(ctx)
	c.timer = time.AfterFunc(l.timeout, c.expire)
	return c
}

// TraceAcquireEnd implements pgxpool.AcquireTracer.
func (l *acquireLimiter) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	c, ok := ctx.(*acquireCtx)
	if !ok {
		c, ok = ctx.Value(acquireCtxKey{}).(*acquireCtx)
	}
	if !ok {
		return // not from TraceAcquireStart: nothing to end
	}
	c.timer.Stop()
	l.waiting.Add(-1)
	l.wait.observe(time.Since(c.start))
	c.mu.Lock()
	if c.expired && data.Err != nil {
		l.timeouts.Add(1)
	}
	c.mu.Unlock()
	c.cancel(nil) // leaves the caller's context
}

// holding tells the acquire of ctx, if any, that it has a connection slot.
func holding(ctx context.Context) {
	c, ok := ctx.(*acquireCtx)
	if !ok {
		c, ok = ctx.Value(acquireCtxKey{}).(*acquireCtx)
	}
	if ok {
		c.hold()
	}
}

// exhausted describes an acquire that ran out of time after waited, from
// the pool's state now.
func (l *acquireLimiter) exhausted(pool *pgxpool.Pool, waited time.Duration) error {
	s := l.state.Load()
	if now := time.Now(); s == nil || now.Sub(s.at) > stateTTL {
		stat := pool.Stat()
		s = &poolState{at: now, inUse: stat.AcquiredConns(), connecting: stat.ConstructingConns(), max: stat.MaxConns()}
		l.state.Store(s)
	}
	return &PoolExhaustedError{
		Timeout: l.timeout, Waited: waited, InUse: s.inUse, Connecting: s.connecting, Max: s.max, Waiting: l.waiting.Load(),
	}
}

type acquireCtxKey struct{}

// acquireCtx is the context of one acquire: the caller's, canceled when the
// timeout passes before the acquire has a connection slot.
type acquireCtx struct {
	context.Context // a child of the caller's, for the timer to cancel
	caller          context.Context
	cancel          context.CancelCauseFunc
	timer           *time.Timer
	limiter         *acquireLimiter
	pool            *pgxpool.Pool
	start           time.Time

	mu      sync.Mutex
	holding bool  // has a slot: the timeout no longer applies
	expired bool  // the timer canceled the acquire
	err     error // the timeout error, once asked for
}

// expire ends the acquire, unless it has a slot by now.
func (c *acquireCtx) expire() {
	c.mu.Lock()
	if c.holding {
		c.mu.Unlock()
		return
	}
	c.expired = true
	c.mu.Unlock()
	c.cancel(ErrPoolExhausted)
}

// hold marks the acquire as having a slot, and stops its timer.
func (c *acquireCtx) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
	c.timer.Stop()
}

// Err is the caller's context's error if it ended, else the timeout error
// if the timer ended the acquire.
func (c *acquireCtx) Err() error {
	err := c.Context.Err()
	if err == nil {
		return nil
	}
	if err := c.caller.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.expired {
		return err // ended by TraceAcquireEnd
	}
	if c.err == nil {
		c.err = c.limiter.exhausted(c.pool, time.Since(c.start))
	}
	return c.err
}

func (c *acquireCtx) Value(key any) any {
	if key == (acquireCtxKey{}) {
		return c
	}
	return c.Context.Value(key)
}
