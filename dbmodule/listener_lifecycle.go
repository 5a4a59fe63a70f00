package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
)

// This file starts and stops the Listener: OpenListener, start, Close and
// stop, and what they log.

// OpenListener makes a Listener from cfg, connects it and starts it, for
// programs without fx; stop it with Close. Like NewListener's start, it fails
// when the database cannot be reached within DB_CONNECT_TIMEOUT.
func OpenListener(ctx context.Context, cfg config.DB, logger *zap.Logger) (*Listener, error) {
	l, err := newListener(cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := l.start(ctx); err != nil {
		l.cancel()
		return nil, err
	}
	return l, nil
}

// Close stops the Listener: it closes its connection and waits for its
// goroutines, the handlers' included (their ctx ends first), but returns
// when ctx ends even if a handler never does. Notifications not yet handled
// are dropped.
func (l *Listener) Close(ctx context.Context) error { return l.stop(ctx) }

// start connects and LISTENs to the channels subscribed so far. It fails,
// holding nothing, when that is not done within DB_CONNECT_TIMEOUT: an app
// that cannot listen should not start, as with the pool's ping.
func (l *Listener) start(ctx context.Context) error {
	l.mu.Lock()
	switch l.state {
	case stateStopped:
		l.mu.Unlock()
		return fmt.Errorf("start database listener: %w", ErrListenerClosed)
	case stateStarting, stateRunning:
		l.mu.Unlock()
		return errors.New("start database listener: started already")
	}
	l.state = stateStarting
	l.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)() // a Stop meanwhile ends the start
	l.lastDial = time.Now()
	conn, want, err := l.connect(ctx)

	l.mu.Lock()
	if err == nil && l.state != stateStarting {
		err = ErrListenerClosed // stopped meanwhile
		l.holding, l.held = false, nil
		l.mu.Unlock()
		closeConn(conn)
		l.mu.Lock()
	}
	if err != nil {
		if l.state == stateStarting {
			l.state = stateNew // nothing held: a later start may try again
		}
		l.broadcastLocked()
		l.mu.Unlock()
		err = l.connectError(err)
		l.log.Error("database listener not started", zap.Error(err))
		return err
	}
	l.state = stateRunning
	l.commitLocked(conn, want)
	l.readerStarted = true
	channels := len(l.subs)
	l.mu.Unlock()
	go l.run(conn)
	l.log.Info("database listener started", l.fields(conn.PgConn().PID(), channels)...)
	return nil
}

// connectError says where the listener could not connect, and never the password.
func (l *Listener) connectError(err error) error {
	return connectError("database listener", err, l.connConfig, "the connect timeout "+l.connConfig.ConnectTimeout.String(), l.urlVar, l.rawURL)
}

// fields describe the connection for logs: where it goes, never the URL.
func (l *Listener) fields(pid uint32, channels int) []zap.Field {
	return []zap.Field{zap.String("host", l.connConfig.Host), zap.Uint16("port", l.connConfig.Port),
		zap.Uint32("pid", pid), zap.Int("channels", channels)}
}

// stop ends the reader, closing the connection, then the handlers.
func (l *Listener) stop(ctx context.Context) error {
	l.mu.Lock()
	if l.state == stateStopped {
		l.mu.Unlock()
		return nil
	}
	l.state = stateStopped
	l.cancel()
	l.broadcastLocked()
	reader := l.readerStarted
	l.mu.Unlock()
	if !reader {
		return nil
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		return fmt.Errorf("stop database listener: connection not closed in time: %w", ctx.Err())
	}
	handled := make(chan struct{})
	go func() {
		l.workers.Wait()
		close(handled)
	}()
	select {
	case <-handled:
	case <-ctx.Done():
		return fmt.Errorf("stop database listener: handlers of %s still running: %w", l.busyChannels(), ctx.Err())
	}
	l.log.Info("database listener stopped", zap.String("host", l.connConfig.Host), zap.Uint16("port", l.connConfig.Port))
	return nil
}

func (l *Listener) busyChannels() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var busy []string
	for ch, subs := range l.subs {
		for _, s := range subs {
			if s.busy() {
				busy = append(busy, fmt.Sprintf("%q", ch))
				break
			}
		}
	}
	slices.Sort(busy)
	return strings.Join(busy, ", ")
}
