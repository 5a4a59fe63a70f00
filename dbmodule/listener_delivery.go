package dbmodule

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// This file hands notifications to the handlers: each subscription's queue
// and goroutine, and the gap that replaces what overflows it.

func (l *Listener) startWorkerLocked(s *subscription) {
	if l.state != stateRunning || s.started {
		return
	}
	s.started = true
	l.workers.Add(1)
	go l.work(s)
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
