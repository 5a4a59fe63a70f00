package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// Migrator applies the goose SQL migrations of a file system to the database
// at the migration URL (DIRECT_URL, else DATABASE_URL), over connections of
// its own: never through the app's pool, which may go through a pooler whose
// transaction mode would break the session lock that serialises migrators.
type Migrator struct {
	provider *goose.Provider
	db       *sql.DB
	url      string // for redacting errors
	log      *zap.Logger
}

// New prepares a Migrator for the migrations in fsys, files named like
// 00001_create_users.sql at its root. It opens no connection yet. Close
// releases it.
func New(cfg config.DB, fsys fs.FS, log *zap.Logger) (*Migrator, error) {
	if log == nil {
		log = zap.NewNop()
	}
	cc, err := dbmodule.MigrationConnConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	raw, _ := cfg.MigrationURL() // for redacting errors
	db := stdlib.OpenDB(*cc)
	// One connection holds the lock, one runs migrations.
	db.SetMaxOpenConns(2)
	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true), // no package-level Go migrations
		goose.WithLogger(goose.NopLogger()),   // progress goes to zap, below
	)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	log = log.Named("migrate")
	if cfg.MigrationVar() == "DATABASE_URL" {
		log.Debug("migrating over DATABASE_URL as DIRECT_URL is unset; set DIRECT_URL if DATABASE_URL goes through a pooler")
	}
	return &Migrator{provider: provider, db: db, url: raw, log: log}, nil
}

// Close closes the Migrator's connections.
func (m *Migrator) Close() error {
	if err := m.db.Close(); err != nil {
		return fmt.Errorf("close migration connections: %w", err)
	}
	return nil
}

// Up applies every pending migration, each in its own transaction, and
// returns what it applied. Migrators starting together, in replicas of one
// app, take turns: the others wait, then find nothing to do.
func (m *Migrator) Up(ctx context.Context) ([]*goose.MigrationResult, error) {
	var applied []*goose.MigrationResult
	err := m.locked(ctx, func() error {
		statuses, err := m.provider.Status(ctx)
		if err != nil {
			return err
		}
		var pending []*goose.Source
		for _, s := range statuses {
			if s.State == goose.StatePending {
				pending = append(pending, s.Source)
			}
		}
		if len(pending) == 0 {
			m.log.Info("database schema up to date", zap.Int("migrations", len(statuses)))
			return nil
		}
		begin := time.Now()
		m.log.Info("applying migrations", zap.Int("pending", len(pending)), zap.Int("migrations", len(statuses)))
		for i, next := range pending {
			r, err := m.provider.UpByOne(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", path.Base(next.Path), err)
			}
			applied = append(applied, r)
			m.log.Info("migration applied", zap.Int64("version", r.Source.Version), zap.String("file", path.Base(r.Source.Path)),
				zap.Duration("duration", r.Duration), zap.Int("step", i+1), zap.Int("of", len(pending)))
		}
		m.log.Info("migrations applied", zap.Int("applied", len(applied)), zap.Duration("duration", time.Since(begin)))
		return nil
	})
	return applied, err
}

// Down rolls back the latest applied migration.
func (m *Migrator) Down(ctx context.Context) (*goose.MigrationResult, error) {
	var r *goose.MigrationResult
	err := m.locked(ctx, func() error {
		var err error
		r, err = m.provider.Down(ctx)
		if err != nil {
			return err
		}
		m.log.Info("migration rolled back", zap.Int64("version", r.Source.Version), zap.String("file", path.Base(r.Source.Path)),
			zap.Duration("duration", r.Duration))
		return nil
	})
	return r, err
}

// Status lists every migration with whether, and when, it was applied.
func (m *Migrator) Status(ctx context.Context) ([]*goose.MigrationStatus, error) {
	s, err := m.provider.Status(ctx)
	if err != nil {
		return nil, m.wrap("read migration status", err)
	}
	return s, nil
}

// Pending reports whether any migration is not applied yet.
func (m *Migrator) Pending(ctx context.Context) (bool, error) {
	p, err := m.provider.HasPending(ctx)
	if err != nil {
		return false, m.wrap("check for pending migrations", err)
	}
	return p, nil
}

// Version returns the version of the latest applied migration; 0 for none.
func (m *Migrator) Version(ctx context.Context) (int64, error) {
	v, err := m.provider.GetDBVersion(ctx)
	if err != nil {
		return 0, m.wrap("read schema version", err)
	}
	return v, nil
}

// locked runs fn holding PostgreSQL's session-level advisory lock for
// migrations, on a connection of its own. The lock is goose's, so goose's
// own CLI and this Migrator also exclude each other. pg_advisory_lock waits
// for the lock instead of polling for it, and ctx bounds the wait.
func (m *Migrator) locked(ctx context.Context, fn func() error) error {
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return m.wrap("connect for migrations", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", lock.DefaultLockID); err != nil {
		return m.wrap("wait for the migration lock", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", lock.DefaultLockID); err != nil {
			// Closing the session releases the lock all the same.
			m.log.Warn("release migration lock", zap.Error(err))
		}
	}()
	if err := fn(); err != nil {
		return m.wrap("migrate", err)
	}
	return nil
}

// wrap adds context to err and removes any password from it.
func (m *Migrator) wrap(what string, err error) error {
	return fmt.Errorf("%s: %w", what, dbmodule.RedactError(err, m.url))
}
