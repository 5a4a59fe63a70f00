package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
)

// This file holds the Listener, made from a config by newListener, and the
// API apps subscribe through: Notifications, Handler, Listen and unlisten.

// Notifications is the handle apps subscribe to PostgreSQL notifications
// through. *Listener implements it; a test replaces it with a fake:
//
//	fx.Replace(fx.Annotate(fake, fx.As(new(dbmodule.Notifications))))
type Notifications interface {
	// Listen subscribes h to channel; see Listener.Listen.
	Listen(ctx context.Context, channel string, h Handler) (unlisten func(), err error)
}

// A Handler receives the notifications of one channel. Each subscription has
// a goroutine of its own that calls its methods one at a time, in the order
// the server sent the notifications; ctx ends when the Listener stops. A
// handler may take its time: up to MaxPendingNotifications wait for it, and
// beyond that it gets a gap instead (the connection never waits for it).
type Handler interface {
	// HandleNotification is called with each notification on the channel.
	// It must not keep or modify n after it returns.
	HandleNotification(ctx context.Context, n *pgconn.Notification)
	// HandleGap says that notifications on channel may have been missed just
	// before this call: the connection was lost and the channel is listened
	// to again (notifications sent in between are gone for good), or the
	// handler fell MaxPendingNotifications behind. Resynchronise here, say
	// by reading the state the notifications announce: every notification
	// sent after the re-LISTEN is delivered after this call. The first
	// LISTEN has no gap: notifications sent before a subscription starts
	// were never promised.
	HandleGap(ctx context.Context, channel string)
}

// HandlerFuncs is a Handler made of two functions; a nil one does nothing.
// Leave Gap nil only where missing a notification is harmless.
type HandlerFuncs struct {
	Notification func(ctx context.Context, n *pgconn.Notification)
	Gap          func(ctx context.Context, channel string)
}

// HandleNotification calls f.Notification.
func (f HandlerFuncs) HandleNotification(ctx context.Context, n *pgconn.Notification) {
	if f.Notification != nil {
		f.Notification(ctx, n)
	}
}

// HandleGap calls f.Gap.
func (f HandlerFuncs) HandleGap(ctx context.Context, channel string) {
	if f.Gap != nil {
		f.Gap(ctx, channel)
	}
}

// MaxPendingNotifications is how many notifications may wait for one
// subscription's handler. A notification beyond that is dropped and the
// handler gets a gap after those already waiting, so that a slow handler
// never stalls the connection, nor the other handlers.
const MaxPendingNotifications = 1024

// ErrListenerClosed is the error of Listen on a stopped Listener.
var ErrListenerClosed = errors.New("database listener is closed")

// maxChannelLen is the longest identifier PostgreSQL keeps (NAMEDATALEN-1);
// it would silently truncate a longer channel name.
const maxChannelLen = 63

// A Listener holds a connection of its own to PostgreSQL, LISTENs on it to
// the channels apps subscribe to, and hands each notification to the
// handlers of its channel. When the connection is lost (a server restart, a
// failover, pg_terminate_backend, a network that stops answering its pings)
// it reconnects, LISTENs to every channel again, then tells every handler of
// the gap. Make one with NewListener (fx) or OpenListener.
type Listener struct {
	connConfig    *pgx.ConnConfig // parsed once; copied for each connection
	beforeConnect func(context.Context, *pgx.ConnConfig) error
	rawURL        string // only to redact errors
	urlVar        string
	pingEvery     time.Duration // ping after this long with nothing received
	pingTimeout   time.Duration
	log           *zap.Logger

	ctx     context.Context // ends when the Listener stops; handlers get it
	cancel  context.CancelFunc
	done    chan struct{} // closed when the reader goroutine has exited
	workers sync.WaitGroup

	mu            sync.Mutex
	state         listenerState
	readerStarted bool
	subs          map[string][]*subscription
	listening     map[string]bool    // channels LISTENed on the current connection
	changed       chan struct{}      // closed and replaced when a subscription goes live or the state changes
	dirty         bool               // subs changed since the reader last told the server
	interrupt     context.CancelFunc // ends the reader's current wait, so it sees dirty
	holding       bool               // notifications go to held until the gaps are queued
	held          []*pgconn.Notification
	pid           uint32

	// Owned by the reader goroutine (or by start, before it runs).
	onServer map[string]bool // channels the current connection LISTENs to
	lastDial time.Time
}

type listenerState int

const (
	stateNew listenerState = iota
	stateStarting
	stateRunning
	stateStopped
)

var _ Notifications = (*Listener)(nil)

// newListener parses cfg into a Listener; it does no I/O.
func newListener(cfg config.DB, logger *zap.Logger) (*Listener, error) {
	// LISTEN is session state, which a pooler in transaction mode loses: the
	// listener connects to PostgreSQL itself, as migrations do. With
	// DATABASE_URL out of the way, ParseConfig reads DIRECT_URL and its
	// errors name it.
	if cfg.DirectURL != "" {
		cfg.URL = ""
	}
	pc, err := ParseConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("database listener: %w", err)
	}
	raw, _ := cfg.RuntimeURL()
	if logger == nil {
		logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		connConfig:    pc.ConnConfig,
		beforeConnect: pc.BeforeConnect, // password hooks apply here too
		rawURL:        raw,
		urlVar:        cfg.RuntimeVar(),
		pingEvery:     pc.HealthCheckPeriod,
		pingTimeout:   pc.PingTimeout,
		log:           logger.Named("db"),
		ctx:           ctx,
		cancel:        cancel,
		done:          make(chan struct{}),
		subs:          map[string][]*subscription{},
		listening:     map[string]bool{},
		changed:       make(chan struct{}),
	}
	cc := l.connConfig
	cc.Tracer = nil
	// Waking the reader cancels its wait; this handler makes that a read
	// deadline, which leaves the connection usable, where a cancel request
	// to the server could not.
	cc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	cc.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) { l.dispatch(n) }
	return l, nil
}

// Listen subscribes h to channel, whose name is taken as it is (quoted, so
// case matters: pg_notify('Orders', ...) reaches "Orders", while the SQL
// command NOTIFY Orders folds it to "orders"). A channel may have several
// handlers; each gets every notification.
//
// Before the Listener starts, Listen only records the subscription, which
// start LISTENs to. After, it returns once the channel is LISTENed on the
// connection, waiting through a reconnection if need be, or when ctx ends.
// From its return on, every notification on channel reaches h, or h gets a
// gap. unlisten ends the subscription: h is not called after it returns,
// except for a call under way, and the channel is UNLISTENed once its last
// handler goes.
func (l *Listener) Listen(ctx context.Context, channel string, h Handler) (unlisten func(), err error) {
	if err := checkChannel(channel); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("listen on channel %q: handler is nil", channel)
	}
	s := &subscription{channel: channel, h: h, ready: make(chan struct{}, 1)}
	l.mu.Lock()
	if l.state == stateStopped {
		l.mu.Unlock()
		return nil, fmt.Errorf("listen on channel %q: %w", channel, ErrListenerClosed)
	}
	l.subs[channel] = append(l.subs[channel], s)
	if l.listening[channel] {
		// Already LISTENed: s gets the very next notification.
		s.live = true
		l.startWorkerLocked(s)
	} else {
		l.dirty = true
		l.wakeLocked()
	}
	l.mu.Unlock()
	unlisten = sync.OnceFunc(func() { l.unlisten(s) })
	if err := l.awaitLive(ctx, s); err != nil {
		unlisten()
		return nil, err
	}
	return unlisten, nil
}

func checkChannel(channel string) error {
	switch {
	case channel == "":
		return errors.New("listen: channel is empty")
	case len(channel) > maxChannelLen:
		return fmt.Errorf("listen: channel %q is %d bytes long; PostgreSQL keeps %d", channel, len(channel), maxChannelLen)
	case strings.ContainsRune(channel, 0):
		return fmt.Errorf("listen: channel %q contains a NUL byte", channel)
	}
	return nil
}

// awaitLive waits until s is LISTENed, or needs no wait (before start).
func (l *Listener) awaitLive(ctx context.Context, s *subscription) error {
	for {
		l.mu.Lock()
		live, state, changed := s.live, l.state, l.changed
		l.mu.Unlock()
		switch {
		case live || state == stateNew:
			return nil
		case state == stateStopped:
			return fmt.Errorf("listen on channel %q: %w", s.channel, ErrListenerClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("listen on channel %q: not listening yet: %w", s.channel, ctx.Err())
		}
	}
}

func (l *Listener) unlisten(s *subscription) {
	l.mu.Lock()
	subs := slices.DeleteFunc(l.subs[s.channel], func(x *subscription) bool { return x == s })
	if len(subs) == 0 {
		delete(l.subs, s.channel)
		// A new subscriber must wait for a fresh LISTEN, not trust one the
		// reader may be undoing.
		delete(l.listening, s.channel)
		l.dirty = true
		l.wakeLocked()
	} else {
		l.subs[s.channel] = subs
	}
	l.mu.Unlock()
	s.remove()
}

// BackendPID is the process id of the Listener's server backend, 0 while it
// has no connection: what pg_stat_activity and pg_terminate_backend know it by.
func (l *Listener) BackendPID() uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pid
}

func (l *Listener) broadcastLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Listener) wakeLocked() {
	if l.interrupt != nil {
		l.interrupt()
	}
}
