package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// errNotStarted is what a connect gets before the app starts: nothing is
// dialed before then, so that an app built and never started, or one whose
// fx.New failed, never opens a connection.
var errNotStarted = errors.New("database pool not started yet: use it from OnStart hooks appended after the pool's, or once the app runs")

// errPoolStopped is what a connect gets once the app stops.
var errPoolStopped = errors.New("database pool stopped")

// errRefusing marks a connect that was not attempted because the server has
// been refusing connections and the pool is backing off; see connGate.
var errRefusing = errors.New("database refusing connections")

// A RefusingError is returned, instead of dialing, while the pool backs off
// from a server that keeps refusing or failing connections. errors.Is(err,
// ErrRefusing) matches it; Last is the failure that started the backoff.
type RefusingError struct {
	Failures int           // consecutive failed connects
	RetryIn  time.Duration // until the pool dials again
	Last     error
}

// ErrRefusing matches a *RefusingError with errors.Is.
var ErrRefusing = errRefusing

func (e *RefusingError) Error() string {
	return fmt.Sprintf("database refusing connections (%d failed connects; next attempt in %s): %s",
		e.Failures, e.RetryIn.Round(time.Millisecond), connectDetail(e.Last))
}

func (e *RefusingError) Unwrap() []error { return []error{errRefusing, e.Last} }

// Gate states.
const (
	gateOpen int32 = iota
	gateHeld
	gateStopped
)

// Backoff of connects while they fail: dense at first, as a failover or a
// restart is often over within a second or two and the pool should follow
// within about a twentieth of a second (a connect every 40-60 ms); then
// about one a second, so that a long outage costs the server at most about
// 5 connects a second per pool, averaged over 10 s, and a recovery is seen
// within a second.
const (
	fastDialInterval = 50 * time.Millisecond
	fastDialPhase    = 1500 * time.Millisecond
	slowDialInterval = time.Second
)

// connGate decides whether the pool may dial: not before the app starts,
// not after it stops, and not more often than the backoff allows while
// connects fail. It also logs an outage once, when it begins and when it
// ends, never per dial.
type connGate struct {
	state  atomic.Int32
	stop   context.Context // canceled when the app stops: dials in flight give up
	cancel context.CancelFunc
	log    *zap.Logger

	mu        sync.Mutex
	failures  int       // consecutive failed connects
	since     time.Time // when they began
	notBefore time.Time // no dial before this
	last      error
}

func newConnGate(log *zap.Logger) *connGate {
	stop, cancel := context.WithCancel(context.Background())
	return &connGate{stop: stop, cancel: cancel, log: log}
}

// install makes pc's connects pass the gate, before any BeforeConnect of
// the caller's, and its dials end when the gate stops.
func (g *connGate) install(pc *pgxpool.Config) {
	next := pc.BeforeConnect
	pc.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		if err := g.admit(time.Now()); err != nil {
			return err
		}
		if next != nil {
			return next(ctx, cc)
		}
		return nil
	}
	dial := pc.ConnConfig.DialFunc
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 5 * time.Minute}).DialContext
	}
	pc.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(g.stop, cancel)()
		return dial(ctx, network, addr)
	}
}

// hold keeps connects out until open; NewPool holds the gate until start.
func (g *connGate) hold() { g.state.CompareAndSwap(gateOpen, gateHeld) }

// open lets connects through.
func (g *connGate) open() { g.state.CompareAndSwap(gateHeld, gateOpen) }

// close keeps every connect out from now on and ends the dials in flight.
func (g *connGate) close() {
	g.state.Store(gateStopped)
	g.cancel()
}

// admit says whether a connect may start now, and takes the backoff's one
// slot when it does, so that a crowd of callers makes one dial, not one each.
func (g *connGate) admit(now time.Time) error {
	switch g.state.Load() {
	case gateHeld:
		return errNotStarted
	case gateStopped:
		return errPoolStopped
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failures == 0 {
		return nil
	}
	if wait := g.notBefore.Sub(now); wait > 0 {
		return &RefusingError{Failures: g.failures, RetryIn: wait, Last: g.last}
	}
	g.notBefore = now.Add(g.interval(now))
	return nil
}

// interval is the jittered wait before the next dial after a failure:
// fastDialInterval ±20 % in the fast phase, then 80-100 % of
// slowDialInterval. Jitter spreads the pools of many app instances apart.
func (g *connGate) interval(now time.Time) time.Duration {
	if now.Sub(g.since) < fastDialPhase {
		return fastDialInterval*4/5 + rand.N(fastDialInterval*2/5+1)
	}
	return slowDialInterval*4/5 + rand.N(slowDialInterval/5+1)
}

// connected records how a connect went: ctx is the connect's own, done
// when its caller gave up, which says nothing of the server.
func (g *connGate) connected(ctx context.Context, host string, port uint16, err error) {
	if err != nil && ctx.Err() != nil {
		return
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		if g.failures > 0 {
			g.log.Info("database reachable again", zap.String("host", host), zap.Uint16("port", port),
				zap.Int("failed_connects", g.failures), zap.Duration("outage", now.Sub(g.since)))
		}
		g.failures, g.last, g.notBefore = 0, nil, time.Time{}
		return
	}
	if errors.Is(err, errNotStarted) || errors.Is(err, errPoolStopped) {
		return
	}
	g.failures++
	g.last = err
	if g.failures == 1 {
		g.since = now
		_, reason := Classify(err)
		g.log.Warn("database unreachable", zap.String("host", host),
			zap.Uint16("port", port), zap.String("reason", reason), zap.String("error", connectDetail(err)))
	}
	g.notBefore = now.Add(g.interval(now))
}
