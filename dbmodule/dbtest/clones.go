package dbtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// errClosed is what a request for a database gets after Server.Close.
var errClosed = errors.New("dbtest: the Server is closed (Main has returned)")

// Bounds of the ready clones (see sizer), and of the builds at a time, each
// on an admin connection of its own that its builder keeps: two, or four
// while tests wait for clones. On 2 cores, idle, two builds at a time
// nearly doubled the throughput of one (two FILE_COPY clones of 7.7 MB in
// 11.5 ms each against one in 8.6 ms); with other work on the machine (load
// 13-17, tests asking back to back), the wait for a clone had a median of
// 49-63 ms with one builder, 29-30 with two, 12-15 with three, 7 with four.
const (
	minReady   = 2
	maxReady   = 8
	builds     = 2
	busyBuilds = 4
)

// clones is a pool of clones of one template, built ahead of demand in the
// background and handed out once each. Released clones are dropped in the
// background too, on the owner's connection.
type clones struct {
	template string
	strategy string // STRATEGY clause, or ""
	admin    *pgx.ConnConfig
	owner    int32
	size     sizer

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every change, a broadcast
	closed      bool
	seq         int
	ready       []string
	building    int
	failing     bool // the latest build failed: build only for waiters
	waiters     []chan taken
	drops       []string
	dropErrs    []error
	dropperBusy bool // the dropper is dropping; idle builders may help
}

type taken struct {
	name string
	err  error
}

func newClones(template, strategy string, admin *pgx.ConnConfig, owner int32) *clones {
	return &clones{
		template: template, strategy: strategy, admin: admin, owner: owner,
		size:    sizer{min: minReady, max: maxReady},
		changed: make(chan struct{}),
	}
}

// broadcast wakes every goroutine waiting for a change; p.mu is held.
func (p *clones) broadcast() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// take hands out a clone: a ready one at once, else the next one built.
func (p *clones) take(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("wait for a test database: %w", err)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return "", errClosed
	}
	p.size.request(time.Now())
	if len(p.ready) > 0 {
		name := p.ready[0]
		p.ready = p.ready[1:]
		p.broadcast() // the builders top the pool up
		p.mu.Unlock()
		return name, nil
	}
	ch := make(chan taken, 1)
	p.waiters = append(p.waiters, ch)
	p.broadcast()
	p.mu.Unlock()

	select {
	case t := <-ch:
		return t.name, t.err
	case <-ctx.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, w := range p.waiters {
			if w == ch {
				p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
				return "", fmt.Errorf("wait for a test database: %w", ctx.Err())
			}
		}
		// A clone (or an error) was handed over as ctx ended: drop it.
		if t := <-ch; t.err == nil {
			p.drops = append(p.drops, t.name)
			p.broadcast()
		}
		return "", fmt.Errorf("wait for a test database: %w", ctx.Err())
	}
}

// job returns the name of the next clone to build, if one is wanted; p.mu
// is held.
func (p *clones) job() (string, bool) {
	if p.closed {
		return "", false
	}
	want := p.size.target() + len(p.waiters)
	if p.failing {
		want = len(p.waiters) // retry only for someone who waits
	}
	if len(p.ready)+p.building >= want {
		return "", false
	}
	if p.building >= builds && (len(p.waiters) == 0 || p.building >= busyBuilds) {
		return "", false
	}
	p.building++
	p.seq++
	return cloneName(p.owner, os.Getpid(), p.seq), true
}

// finish records the outcome of building name.
func (p *clones) finish(name string, took time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.broadcast()
	p.building--
	p.failing = err != nil
	var w chan taken
	if len(p.waiters) > 0 {
		w, p.waiters = p.waiters[0], p.waiters[1:]
	}
	switch {
	case err != nil && w != nil:
		w <- taken{err: err}
	case err != nil:
		// Nobody waits; the next request retries and gets the error.
	case w != nil:
		p.size.built(took)
		w <- taken{name: name}
	case p.closed:
		p.drops = append(p.drops, name)
	default:
		p.size.built(took)
		p.ready = append(p.ready, name)
	}
}

// shut closes the pool: waiting requests fail, builders stop after the
// clone at hand.
func (p *clones) shut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, w := range p.waiters {
		w <- taken{err: errClosed}
	}
	p.waiters = nil
	p.broadcast()
}
