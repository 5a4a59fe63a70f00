package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// This file holds the Listener's connection: connecting and LISTENing, the
// reader goroutine that receives and pings, and reconnecting with backoff,
// which re-LISTENs and queues the gaps.

// Reconnection pacing: after a loss the first attempt is immediate, then the
// delays double from 100 ms to 5 s, each drawn from its upper half (50-100
// ms, 100-200 ms, ..., 2.5-5 s) so that the apps that lost one server do
// not retry in step. Two attempts are never closer than minDialGap, so a
// server that drops every new connection at once is not hammered.
const (
	firstDelay = 100 * time.Millisecond
	maxDelay   = 5 * time.Second
	minDialGap = 50 * time.Millisecond
)

// connect opens a connection and LISTENs on it to every subscribed channel,
// returning the channels it LISTENed. Notifications that arrive meanwhile
// are held until commitLocked, so that they follow the gaps it queues.
func (l *Listener) connect(ctx context.Context) (*pgx.Conn, []string, error) {
	cc := l.connConfig.Copy()
	if l.beforeConnect != nil {
		if err := l.beforeConnect(ctx, cc); err != nil {
			return nil, nil, fmt.Errorf("before connect: %w", err)
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, nil, err
	}
	l.mu.Lock()
	l.holding = true
	l.mu.Unlock()
	l.onServer = map[string]bool{}
	want, err := l.sync(ctx, conn)
	if err != nil {
		l.mu.Lock()
		l.holding, l.held = false, nil
		l.mu.Unlock()
		closeConn(conn)
		return nil, nil, err
	}
	return conn, want, nil
}

// commitLocked makes a new connection current: its channels are LISTENed,
// handlers that were live before get a gap, the others go live, and the
// notifications held meanwhile are handed out after the gaps.
func (l *Listener) commitLocked(conn *pgx.Conn, want []string) {
	l.pid = conn.PgConn().PID()
	l.markLocked(want, true)
	held := l.held
	l.holding, l.held = false, nil
	for _, n := range held {
		l.deliverLocked(n)
	}
}

// markLocked records that the channels in want are LISTENed, starting the
// handlers that were waiting for it; with gaps, the handlers that were live
// already get a gap first.
func (l *Listener) markLocked(want []string, gaps bool) {
	for _, ch := range want {
		subs := l.subs[ch]
		if len(subs) == 0 {
			continue // unsubscribed meanwhile; the next sync UNLISTENs it
		}
		l.listening[ch] = true
		for _, s := range subs {
			if s.live && gaps {
				s.push(nil)
			}
			s.live = true
			l.startWorkerLocked(s)
		}
	}
	l.broadcastLocked()
}

// sync LISTENs to the subscribed channels the connection does not listen
// to yet, and UNLISTENs those nobody wants any more, in one round trip.
// It returns the channels subscribed when it began.
func (l *Listener) sync(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	l.mu.Lock()
	want := make([]string, 0, len(l.subs))
	for ch := range l.subs {
		want = append(want, ch)
	}
	l.mu.Unlock()
	slices.Sort(want)
	var sql strings.Builder
	for _, ch := range want {
		if !l.onServer[ch] {
			sql.WriteString("LISTEN " + pgx.Identifier{ch}.Sanitize() + ";")
		}
	}
	var drop []string
	for ch := range l.onServer {
		if !slices.Contains(want, ch) {
			drop = append(drop, ch)
			sql.WriteString("UNLISTEN " + pgx.Identifier{ch}.Sanitize() + ";")
		}
	}
	if sql.Len() == 0 {
		return want, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.connConfig.ConnectTimeout)
	defer cancel()
	if _, err := conn.PgConn().Exec(ctx, sql.String()).ReadAll(); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	for _, ch := range want {
		l.onServer[ch] = true
	}
	for _, ch := range drop {
		delete(l.onServer, ch)
	}
	return want, nil
}

// run is the reader goroutine: it serves the connection until it is lost,
// then reconnects, until the Listener stops.
func (l *Listener) run(conn *pgx.Conn) {
	defer close(l.done)
	for {
		err := l.serve(conn)
		pid := conn.PgConn().PID()
		closeConn(conn)
		lostAt := time.Now()
		l.mu.Lock()
		clear(l.listening)
		l.pid, l.interrupt = 0, nil
		channels := len(l.subs)
		l.mu.Unlock()
		if l.ctx.Err() != nil {
			return
		}
		l.log.Warn("database listener lost its connection; reconnecting",
			append(l.fields(pid, channels), zap.Error(RedactError(err, l.rawURL)))...)
		var attempts int
		var lastErr error
		conn, attempts, lastErr = l.reconnect()
		if conn == nil {
			return // stopped
		}
		fields := append(l.fields(conn.PgConn().PID(), channels), zap.Duration("outage", time.Since(lostAt)), zap.Int("attempts", attempts))
		if lastErr != nil {
			fields = append(fields, zap.NamedError("last_error", RedactError(lastErr, l.rawURL)))
		}
		l.log.Info("database listener reconnected", fields...)
	}
}

// serve waits for notifications (OnNotification hands them out), tells the
// server of subscription changes, and pings a connection that has been
// quiet for a health-check period. It returns why the connection is lost.
func (l *Listener) serve(conn *pgx.Conn) error {
	for {
		l.mu.Lock()
		dirty := l.dirty
		l.dirty = false
		wait, cancel := context.WithTimeout(l.ctx, l.pingEvery)
		l.interrupt = cancel
		l.mu.Unlock()
		if dirty {
			want, err := l.sync(l.ctx, conn)
			if err != nil {
				cancel()
				return err
			}
			l.mu.Lock()
			l.markLocked(want, false)
			l.mu.Unlock()
		}
		err := conn.PgConn().WaitForNotification(wait)
		waitErr := wait.Err()
		cancel()
		switch {
		case err == nil: // a notification, handed out already
		case l.ctx.Err() != nil:
			return l.ctx.Err()
		case conn.PgConn().IsClosed():
			return err
		case errors.Is(waitErr, context.DeadlineExceeded):
			ctx, cancel := context.WithTimeout(l.ctx, l.pingTimeout)
			err := conn.PgConn().Ping(ctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping after %s of silence: %w", l.pingEvery, err)
			}
		case waitErr != nil: // woken to sync
		default:
			return err
		}
	}
}

// reconnect connects again, with backoff, until it succeeds (returning the
// connection, the attempts it took and the last failure) or the Listener
// stops (returning a nil connection).
func (l *Listener) reconnect() (*pgx.Conn, int, error) {
	var lastErr error
	for attempt := 1; ; attempt++ {
		delay := time.Until(l.lastDial.Add(minDialGap))
		if attempt > 1 {
			delay = max(delay, reconnectDelay(attempt-1))
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.ctx.Done():
				t.Stop()
				return nil, attempt - 1, lastErr
			}
		}
		l.lastDial = time.Now()
		conn, want, err := l.connect(l.ctx)
		if err == nil {
			l.mu.Lock()
			stopped := l.state == stateStopped
			if !stopped {
				l.commitLocked(conn, want)
			}
			l.mu.Unlock()
			if stopped {
				closeConn(conn)
				return nil, attempt, lastErr
			}
			return conn, attempt, lastErr
		}
		if l.ctx.Err() != nil {
			return nil, attempt, lastErr
		}
		lastErr = err
	}
}

// reconnectDelay is the wait before retry n (1 for the second attempt).
func reconnectDelay(n int) time.Duration {
	d := maxDelay
	if n < 8 {
		d = min(d, firstDelay<<(n-1))
	}
	return d/2 + rand.N(d/2+1)
}

// closeConn closes conn, sending the server a goodbye when it can, within
// the connect timeout.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), conn.Config().ConnectTimeout)
	defer cancel()
	conn.Close(ctx) //nolint:errcheck // the connection is being dropped either way
}
