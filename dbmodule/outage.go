package dbmodule

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
)

// outage turns a pool's failed connects into two log lines per outage: a
// warning at the first failure, with its error, and a line when a connect
// succeeds again, with how many failed in between and for how long. A
// failover or restart makes dozens of connects fail; a line for each would
// bury the one that matters.
type outage struct {
	mu       sync.Mutex
	down     bool
	since    time.Time
	failures int
}

// connectFailed counts a failed connect, logging the first of an outage.
func (o *outage) connectFailed(log *zap.Logger, fields []zap.Field, err error) {
	if errors.Is(err, context.Canceled) {
		return // the pool is closing, or a caller gave up: not the database's doing
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures++
	if o.down {
		return
	}
	o.down, o.since = true, time.Now()
	if log != nil {
		// pgconn's connect errors name user, database, host and port, never the password.
		log.Warn("database unreachable", append(fields, zap.Error(err))...)
	}
}

// connected ends an outage, if there is one.
func (o *outage) connected(log *zap.Logger, fields []zap.Field) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down {
		return
	}
	if log != nil {
		log.Info("database reachable again", append(fields,
			zap.Int("failed_connects", o.failures), zap.Duration("outage", time.Since(o.since)))...)
	}
	o.down, o.failures = false, 0
}
