package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

func (l *Listener) startWorkerLocked(s *subscription) {
	if l.state != stateRunning || s.started {
		return
	}
	s.started = true
	l.workers.Add(1)
	go l.work(s)
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

// dispatch hands a notification to the handlers of its channel. It runs on
// the reader goroutine, inside pgconn's read, so it never blocks.
func (l *Listener) dispatch(n *pgconn.Notification) {
	l.mu.Lock()
	if l.holding {
		l.held = append(l.held, n)
		l.mu.Unlock()
		return
	}
	dropped := l.deliverLocked(n)
	l.mu.Unlock()
	if dropped {
		l.log.Warn("database listener dropped notifications: a handler is too slow; it gets a gap",
			zap.String("channel", n.Channel), zap.Int("pending", MaxPendingNotifications))
	}
}

// deliverLocked queues n for each handler of its channel, reporting whether
// one of them overflowed just now.
func (l *Listener) deliverLocked(n *pgconn.Notification) (dropped bool) {
	subs := l.subs[n.Channel]
	for i, s := range subs {
		m := n
		if i > 0 {
			c := *n // each handler its own copy
			m = &c
		}
		dropped = s.push(m) || dropped
	}
	return dropped
}

// work is a subscription's goroutine: it calls the handler with what is
// queued, until the subscription ends or the Listener stops.
func (l *Listener) work(s *subscription) {
	defer l.workers.Done()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-s.ready:
		}
		for l.ctx.Err() == nil {
			n, gap, ok := s.next()
			if !ok {
				break
			}
			s.call(l.ctx, n, gap)
		}
		if s.isRemoved() {
			return
		}
	}
}

// A subscription is one handler of one channel, with its queue.
type subscription struct {
	channel string
	h       Handler
	ready   chan struct{} // a token when the queue may have grown

	// Guarded by the Listener's mu.
	live    bool // its channel is LISTENed: it gets every notification, or a gap
	started bool // its goroutine runs

	mu      sync.Mutex
	queue   []*pgconn.Notification // nil entries are gaps
	pending int                    // notifications (not gaps) in queue
	removed bool
	calling bool
}

// push queues n, or a gap when n is nil, and reports whether n was the first
// dropped of a run because the handler is MaxPendingNotifications behind.
func (s *subscription) push(n *pgconn.Notification) (dropped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return false
	}
	gapLast := len(s.queue) > 0 && s.queue[len(s.queue)-1] == nil
	switch {
	case n == nil && gapLast:
		return false // one gap covers both
	case n == nil:
		s.queue = append(s.queue, nil)
	case s.pending >= MaxPendingNotifications:
		if gapLast {
			return false // the gap queued last is still ahead of the handler
		}
		s.queue = append(s.queue, nil)
		dropped = true
	default:
		s.queue = append(s.queue, n)
		s.pending++
	}
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return dropped
}

// next takes the oldest queued entry; ok is false when there is none or the
// subscription has ended.
func (s *subscription) next() (n *pgconn.Notification, gap, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed || len(s.queue) == 0 {
		return nil, false, false
	}
	n = s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	if n != nil {
		s.pending--
	}
	s.calling = true
	return n, n == nil, true
}

func (s *subscription) call(ctx context.Context, n *pgconn.Notification, gap bool) {
	defer func() {
		s.mu.Lock()
		s.calling = false
		s.mu.Unlock()
	}()
	if gap {
		s.h.HandleGap(ctx, s.channel)
	} else {
		s.h.HandleNotification(ctx, n)
	}
}

func (s *subscription) remove() {
	s.mu.Lock()
	s.removed = true
	s.queue, s.pending = nil, 0
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

func (s *subscription) isRemoved() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removed
}

func (s *subscription) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calling
}
