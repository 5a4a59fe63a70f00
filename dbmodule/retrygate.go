package dbmodule

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// RideThroughLimit bounds how long one call waits for the database to
// accept connections again (a failover, a restart) before it fails with the
// last error, whatever its own deadline: a planned switchover keeps writes
// out for one to seven seconds, a promotion after a crash for up to about
// ten once the failover manager is tuned.
const RideThroughLimit = 15 * time.Second

// How often, during an outage, the one caller that tries for all the others
// tries again: from probeBase, doubling, up to probeCap, each wait jittered
// by half. Other callers wait for it instead of dialing. A try costs a dial
// only when the pool's connect backoff (gate.go) lets one through, so the
// pool dials as that allows however many callers wait, and a try that the
// backoff turns away costs nothing: the cap only bounds how late after the
// backoff's next slot the prober notices it.
const (
	probeBase = 5 * time.Millisecond
	probeCap  = 20 * time.Millisecond
)

// gate coordinates the callers of one pool through an outage: the first
// to fail on a connect becomes the prober and tries again with backoff; the
// others wait until it gets through, or gives up and leaves its place to
// one of them.
type gate struct {
	down atomic.Bool // an outage is under way: callers wait instead of dialing

	mu      sync.Mutex
	prober  *byte         // identity of the caller trying for all; nil: none
	changed chan struct{} // closed when the outage ends or the prober leaves
	last    error         // the latest failure, for callers that give up without trying

	// sent, if set, widens neverSent for one pool's callers (see
	// rideThrough.neverSent).
	unsent func(error) bool
}

// neverSent is neverSent, or the gate's wider rule.
func (g *gate) neverSent(err error) bool {
	if g.unsent != nil {
		return g.unsent(err)
	}
	return neverSent(err)
}

// failed records err (nil: the caller has not tried, it found the gate
// down), makes the caller, me, the prober if there is none, and returns
// whether it is and what to wait on if not.
func (g *gate) failed(err error, me *byte) (prober bool, changed <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.last = err
		g.down.Store(true)
	}
	if !g.down.Load() {
		return false, nil // over already: try now
	}
	if g.prober == nil {
		g.prober = me
	}
	if g.changed == nil {
		g.changed = make(chan struct{})
	}
	return g.prober == me, g.changed
}

// recovered ends the outage: every waiting caller tries again at once.
func (g *gate) recovered() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down.Store(false)
	g.prober, g.last = nil, nil
	g.wake()
}

// leave gives up the prober's place, if me holds it, to a waiting caller.
func (g *gate) leave(me *byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.prober == me {
		g.prober = nil
		g.wake()
	}
}

func (g *gate) wake() {
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
}

func (g *gate) lastErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}

// probeWait is the prober's wait before its attempt after attempt failures.
func probeWait(attempt int) time.Duration {
	d := probeCap
	if attempt < 8 {
		d = min(probeCap, probeBase<<attempt)
	}
	return d/2 + rand.N(d/2+1)
}

// rideOut tries again a call that failed with err before it reached a
// server (err nil: it found an outage under way and did not try), until try
// succeeds, fails otherwise, ctx ends or RideThroughLimit passes. Connect
// failures go through the gate; a connection that died before its statement
// ran (lostBeforeStatement) is replaced at once, a few times at most.
func rideOut(ctx context.Context, g *gate, err error, try func() error, lostBeforeStatement func(error) bool) error {
	start := time.Now()
	limit := time.NewTimer(RideThroughLimit)
	defer limit.Stop()
	me := new(byte)
	defer g.leave(me)
	for attempt, replaced := 0, 0; ; {
		switch {
		case err == nil || g.neverSent(err):
			prober, changed := g.failed(err, me)
			switch {
			case prober && err != nil:
				wait := time.NewTimer(probeWait(attempt))
				attempt++
				select {
				case <-wait.C:
				case <-ctx.Done():
					wait.Stop()
					return gaveUp(ctx, start, err, "the caller's context ended")
				case <-limit.C:
					wait.Stop()
					return gaveUp(ctx, start, err, "dbmodule.RideThroughLimit")
				}
			case changed != nil && !prober:
				select {
				case <-changed:
				case <-ctx.Done():
					return gaveUp(ctx, start, orShared(err, g.lastErr()), "the caller's context ended")
				case <-limit.C:
					return gaveUp(ctx, start, orShared(err, g.lastErr()), "dbmodule.RideThroughLimit")
				}
				// The outage ended, or this caller may be the prober now;
				// either way its own failure is old news.
				err = nil
				continue
			}
		case lostBeforeStatement != nil && lostBeforeStatement(err) && replaced < 3:
			replaced++ // a dead pooled connection: the reset policy pings its server's others
		default:
			return err
		}
		last := err
		if err = try(); err == nil {
			g.recovered()
			return nil
		}
		if ctx.Err() != nil {
			// The deadline came during the attempt: say what the database
			// answered before, not only that time ran out.
			return gaveUp(ctx, start, orShared(last, g.lastErr()), "the caller's context ended")
		}
	}
}

func orShared(mine, shared error) error {
	if mine != nil {
		return mine
	}
	return shared
}

func gaveUp(ctx context.Context, start time.Time, last error, bound string) error {
	if last == nil {
		last = errors.New("an outage was under way")
	}
	waited := time.Since(start).Round(time.Millisecond)
	if err := ctx.Err(); err != nil {
		last = errors.Join(err, last)
	}
	return fmt.Errorf("database unavailable; waited %s for it, until %s: %w", waited, bound, last)
}

// neverSent reports whether err means the call never reached a server, so
// that trying again cannot run anything twice: no connection could be
// opened (the dial failed, the server refused the startup with 57P03 or
// 53300, target_session_attrs rejected every host, a connect timed out), or
// pgconn knows that nothing was sent. Connect failures that trying again
// cannot cure (a wrong password, a missing database, no privilege, a
// pooler refusing a parameter, a certificate not trusted) are not retried.
// The caller's own end (context canceled or its deadline) never is.
func neverSent(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, ErrRefusing) {
		return true // the pool's gate held the connect back (gate.go): nothing was dialed
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return !permanentConnectFailure(err)
	}
	return !errors.Is(err, context.DeadlineExceeded) && pgconn.SafeToRetry(err)
}

// permanentConnectFailure reports whether any part of a connect error (one
// per host tried) is one that no retry cures.
func permanentConnectFailure(err error) bool {
	permanent := false
	walkErrors(err, func(e error) {
		var pgErr *pgconn.PgError
		var unknownCA x509.UnknownAuthorityError
		var hostname x509.HostnameError
		var invalid x509.CertificateInvalidError
		var verify *tls.CertificateVerificationError
		switch {
		case errors.As(e, &pgErr):
			switch {
			case strings.HasPrefix(pgErr.Code, "28"), pgErr.Code == "3D000", pgErr.Code == "42501", pgErr.Code == "08P01":
				permanent = true
			}
		case errors.As(e, &unknownCA), errors.As(e, &hostname), errors.As(e, &invalid), errors.As(e, &verify):
			permanent = true
		}
	})
	return permanent
}

// walkErrors calls fn on err and every error it wraps, joined ones included.
func walkErrors(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, fn)
		}
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), fn)
	}
}

// connLost reports whether err means the connection went away (a closed
// socket, 57P01 or 57P02 from the server), rather than the statement
// failing or the caller giving up. BEGIN that fails so has not begun
// anything, and is safe to send again on another connection.
func connLost(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "57P01" || pgErr.Code == "57P02" || strings.HasPrefix(pgErr.Code, "08")
	}
	var netErr net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.As(err, &netErr)
}
