package dbmodule_test

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// probeTracer is a pgx tracer that counts the pool's connect attempts and
// acquires as they begin.
type probeTracer struct{ connects, acquires atomic.Int64 }

func (p *probeTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (p *probeTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (p *probeTracer) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	p.connects.Add(1)
	return ctx
}
func (p *probeTracer) TraceConnectEnd(context.Context, pgx.TraceConnectEndData) {}
func (p *probeTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	p.acquires.Add(1)
	return ctx
}
func (p *probeTracer) TraceAcquireEnd(context.Context, *pgxpool.Pool, pgxpool.TraceAcquireEndData) {}
