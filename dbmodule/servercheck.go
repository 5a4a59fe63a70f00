package dbmodule

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/dbmodule/internal/headroom"
)

// serverCheckDelay is how long after start the server check waits: the app
// need not wait for advice, and its first moments have better uses for a
// connection; an app that stops sooner is spared the check.
const serverCheckDelay = time.Second

// serverCheck reads the server's headroom on one of the pool's connections,
// serverCheckDelay after start, and warns about what it finds, once.
type serverCheck struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startServerCheck(pool *pgxpool.Pool, log *zap.Logger) *serverCheck {
	pc := pool.Config()
	ctx, cancel := context.WithCancel(context.Background())
	c := &serverCheck{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		wait := time.NewTimer(serverCheckDelay)
		defer wait.Stop()
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
		ctx, cancel := context.WithTimeout(ctx, pc.ConnConfig.ConnectTimeout+pc.PingTimeout)
		defer cancel()
		conn, err := pool.Acquire(ctx)
		if err != nil {
			log.Debug("server connection limits unknown", zap.Error(err))
			return
		}
		defer conn.Release()
		h, err := headroom.Read(ctx, conn.Conn().PgConn())
		if err != nil {
			log.Debug("server connection limits unknown", zap.Error(err))
			return
		}
		for _, w := range headroom.Check(h, pc.ConnConfig.Port, pc.MaxConns, pc.ConnConfig.DefaultQueryExecMode, ExecModeHint) {
			log.Warn(w.Message, zap.Int32("max_conns", pc.MaxConns), zap.Int("free", h.Free()), zap.Int("max_connections", h.MaxConnections),
				zap.Int("reserved", h.Reserved), zap.Int("in_use", h.InUse), zap.Int("server_port", h.Port), zap.Bool("pooler", w.Pooler))
		}
	}()
	return c
}

// stop ends the check, interrupting its query, and waits for it within
// ctx; a nil check (the app never got that far) is already stopped.
func (c *serverCheck) stop(ctx context.Context) {
	if c == nil {
		return
	}
	c.cancel()
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}
