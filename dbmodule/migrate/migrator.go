package migrate

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// Migrator applies the goose SQL migrations of a file system to the database
// at the migration URL (DIRECT_URL, else DATABASE_URL), over a connection of
// its own for each call: never through the app's pool, which may go through
// a pooler whose transaction mode would break the session lock that
// serialises migrators. A Migrator is safe for concurrent use.
type Migrator struct {
	cc         *pgx.ConnConfig
	where      string // the target, for messages
	migrations []*migration
	log        *zap.Logger
}

// New prepares a Migrator for the migrations in fsys, files named like
// 00001_create_users.sql at its root, which it reads and parses now: a file
// that does not parse is a *ParseError naming it and the line. It opens no
// connection.
func New(cfg config.DB, fsys fs.FS, log *zap.Logger) (*Migrator, error) {
	if log == nil {
		log = zap.NewNop()
	}
	cc, err := dbmodule.MigrationConnConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	sessionConfig(cc)
	migrations, err := load(fsys)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	log = log.Named("migrate")
	if cfg.MigrationVar() == "DATABASE_URL" {
		log.Debug("migrating over DATABASE_URL as DIRECT_URL is unset; set DIRECT_URL if DATABASE_URL goes through a pooler")
	}
	return &Migrator{cc: cc, where: where(cc, cfg.MigrationVar()), migrations: migrations, log: log}, nil
}

// Close releases the Migrator. It holds no connection between calls, so
// there is nothing to close today; callers defer it all the same.
func (m *Migrator) Close() error { return nil }

// Up applies every pending migration in order, each in its own transaction
// unless its file says NO TRANSACTION, and returns what it applied, also
// when a later one fails. Migrators starting together, in replicas of one
// app, take turns: the others wait for the lock, then find nothing to do.
//
// Up refuses, applying nothing, when files older than the database's
// version are not applied (ErrOutOfOrder), as goose does.
func (m *Migrator) Up(ctx context.Context) ([]Result, error) {
	var done []Result
	err := m.locked(ctx, func(conn *pgx.Conn) error {
		table, err := ensureTable(ctx, conn)
		if err != nil {
			return err
		}
		versions, err := readApplied(ctx, conn, table)
		if err != nil {
			return err
		}
		pending, err := m.pending(versions)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			m.log.Info("database schema up to date", zap.Int64("version", current(versions)), zap.Int("migrations", len(m.migrations)))
			return nil
		}
		begin := time.Now()
		m.log.Info("applying migrations", zap.Int("pending", len(pending)), zap.Int("migrations", len(m.migrations)))
		for i, mg := range pending {
			r, err := m.run(ctx, conn, table, mg, true)
			if err != nil {
				return err
			}
			done = append(done, r)
			m.log.Info("migration applied", zap.Int64("version", r.Version), zap.String("file", r.File),
				zap.Duration("duration", r.Duration), zap.Int("step", i+1), zap.Int("of", len(pending)))
		}
		m.log.Info("migrations applied", zap.Int("applied", len(done)), zap.Duration("duration", time.Since(begin)))
		return nil
	})
	if err != nil {
		return done, fmt.Errorf("migrate up: %w", err)
	}
	return done, nil
}

// pending returns the migrations to apply, given the versions applied.
func (m *Migrator) pending(versions []applied) ([]*migration, error) {
	isApplied := make(map[int64]bool, len(versions))
	for _, a := range versions {
		isApplied[a.version] = true
	}
	cur := current(versions)
	var pending, old []*migration
	for _, mg := range m.migrations {
		switch {
		case isApplied[mg.version]:
		case mg.version < cur:
			old = append(old, mg)
		default:
			pending = append(pending, mg)
		}
	}
	if len(old) > 0 {
		files := make([]string, len(old))
		for i, mg := range old {
			files[i] = mg.file
		}
		return nil, fmt.Errorf("%w: %s, below version %d; renumber them above it", ErrOutOfOrder, strings.Join(files, ", "), cur)
	}
	return pending, nil
}

// Down rolls back the database's latest migration, the one of its version.
// With none applied it returns ErrNothingToRollBack.
func (m *Migrator) Down(ctx context.Context) (Result, error) {
	var r Result
	err := m.locked(ctx, func(conn *pgx.Conn) error {
		table, ok, err := findTable(ctx, conn)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNothingToRollBack
		}
		versions, err := readApplied(ctx, conn, table)
		if err != nil {
			return err
		}
		v := current(versions)
		if v == 0 {
			return ErrNothingToRollBack
		}
		mg := m.find(v)
		if mg == nil {
			return fmt.Errorf("version %d, the database's latest, has no migration file here: roll it back with the build that applied it", v)
		}
		if r, err = m.run(ctx, conn, table, mg, false); err != nil {
			return err
		}
		m.log.Info("migration rolled back", zap.Int64("version", r.Version), zap.String("file", r.File), zap.Duration("duration", r.Duration))
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("migrate down: %w", err)
	}
	return r, nil
}

func (m *Migrator) find(version int64) *migration {
	for _, mg := range m.migrations {
		if mg.version == version {
			return mg
		}
	}
	return nil
}

// Status lists every migration, by version, with whether and when it was
// applied, and the versions the database has applied that no file has.
// It writes nothing: in a database never migrated, every migration is
// pending.
func (m *Migrator) Status(ctx context.Context) ([]Status, error) {
	var statuses []Status
	err := m.session(ctx, func(conn *pgx.Conn) error {
		versions, err := m.read(ctx, conn)
		if err != nil {
			return err
		}
		at := make(map[int64]time.Time, len(versions))
		for _, a := range versions {
			at[a.version] = a.at
		}
		for _, mg := range m.migrations {
			s := Status{Version: mg.version, File: mg.file, State: StatePending}
			if t, ok := at[mg.version]; ok {
				s.State, s.AppliedAt = StateApplied, t
				delete(at, mg.version)
			}
			statuses = append(statuses, s)
		}
		for _, a := range versions {
			if _, unknown := at[a.version]; unknown {
				statuses = append(statuses, Status{Version: a.version, State: StateNoFile, AppliedAt: a.at})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read migration status: %w", err)
	}
	slices.SortFunc(statuses, func(a, b Status) int { return cmp.Compare(a.Version, b.Version) })
	return statuses, nil
}

// Pending reports whether any migration is not applied yet.
func (m *Migrator) Pending(ctx context.Context) (bool, error) {
	statuses, err := m.Status(ctx)
	if err != nil {
		return false, err
	}
	for _, s := range statuses {
		if s.State == StatePending {
			return true, nil
		}
	}
	return false, nil
}

// Version returns the database's schema version, its highest applied
// migration's, as goose reads it; 0 for none.
func (m *Migrator) Version(ctx context.Context) (int64, error) {
	var v int64
	err := m.session(ctx, func(conn *pgx.Conn) error {
		versions, err := m.read(ctx, conn)
		v = current(versions)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// read returns the versions applied, none when there is no version table.
func (m *Migrator) read(ctx context.Context, conn *pgx.Conn) ([]applied, error) {
	table, ok, err := findTable(ctx, conn)
	if err != nil || !ok {
		return nil, err
	}
	return readApplied(ctx, conn, table)
}
