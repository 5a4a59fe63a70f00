package dbtest

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// release queues a handed-out clone for dropping.
func (p *clones) release(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drops = append(p.drops, name)
	p.broadcast()
}

// dropJob returns a clone for an idle builder to drop while the dropper is
// busy with another; p.mu is held. DROP DATABASE waits for an immediate
// checkpoint (PostgreSQL 15 here: one more in pg_stat_bgwriter's
// checkpoints_req per drop), which drops waiting together can share: on a
// server with fsync on, one drop took 0.2 to 5 s here, under load.
func (p *clones) dropJob() string {
	if p.closed || len(p.drops) == 0 || !p.dropperBusy {
		return "" // once closed, the dropper drops the rest
	}
	name := p.drops[0]
	p.drops = p.drops[1:]
	return name
}

// dropFailed records a drop's error, for Close to report.
func (p *clones) dropFailed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropErrs = append(p.dropErrs, err)
}

// dropAll runs the dropper on the owner's connection until the pool is
// closed, its builders have stopped (stopped is closed) and nothing is left
// to drop, or ctx ends.
func (p *clones) dropAll(ctx context.Context, conn *pgx.Conn, stopped <-chan struct{}) {
	for {
		p.mu.Lock()
		var name string
		if len(p.drops) > 0 {
			name, p.drops = p.drops[0], p.drops[1:]
		}
		p.dropperBusy = name != ""
		changed := p.changed
		if p.dropperBusy && len(p.drops) > 0 {
			p.broadcast() // a builder may help with the rest
		}
		p.mu.Unlock()
		if name != "" {
			if err := dropDatabase(ctx, conn, name); err != nil {
				p.dropFailed(err)
			}
			continue
		}
		select {
		case <-stopped:
			p.mu.Lock()
			p.drops, p.ready = append(p.drops, p.ready...), nil
			done := len(p.drops) == 0
			p.mu.Unlock()
			if done {
				return
			}
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}
