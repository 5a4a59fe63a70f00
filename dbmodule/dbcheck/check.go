package dbcheck

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/internal/headroom"
	"github.com/fxpg/fxpg/dbmodule/migrate"
)

// Options say what Run checks.
type Options struct {
	// Environ is the environment the settings are read from, as
	// config.ParseDB takes it; nil is an empty one.
	Environ map[string]string
	// Migrations, goose SQL files, are compared with those the database has
	// applied, over the migration URL; nil skips that check.
	Migrations fs.FS
	// AllowPending makes pending migrations a warning rather than a problem.
	AllowPending bool
	// RoundTrips is how many pings measure the round-trip time; default 5.
	RoundTrips int
}

// Run checks the database that opts.Environ configures, on one connection
// made as the app's pool makes them (same timeouts, exec mode and
// statement_timeout), and reports what it found. It never returns an error:
// Report.Problem says why the database is unhealthy, Report.Warnings what
// deserves a look. ctx bounds the whole check.
//
// The database is unhealthy when the settings are invalid, when it cannot be
// reached or refuses the login, when a query fails, or when migrations are
// pending (unless opts.AllowPending). A pool larger than the server's free
// connections, or a schema newer than this build's migrations, is a warning.
//
// Reading the migration status writes nothing, as `migrate status` does
// not: in a database never migrated, every migration is pending.
func Run(ctx context.Context, opts Options) Report {
	c := checker{opts: opts}
	c.run(ctx)
	r := c.report
	r.Healthy = r.Problem == ""
	return r
}

type checker struct {
	opts   Options
	urls   []string // whose passwords no message may show
	report Report
}

// fail records the first problem, on one line and without passwords.
func (c *checker) fail(err error) {
	if c.report.Problem == "" {
		c.report.Problem = c.clean(err.Error())
	}
}

func (c *checker) warn(msg string) { c.report.Warnings = append(c.report.Warnings, c.clean(msg)) }

func (c *checker) clean(msg string) string {
	msg = dbmodule.RedactSecrets(msg, c.urls...)
	// One line: errors.Join and pgconn separate with newlines.
	var parts []string
	for _, line := range strings.Split(msg, "\n") {
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

func (c *checker) run(ctx context.Context) {
	cfg, err := config.ParseDB(c.opts.Environ)
	if err != nil {
		c.fail(err)
		return
	}
	c.urls = []string{cfg.URL, cfg.DirectURL}
	settings, pc, err := settingsFor(cfg, c.opts.Environ)
	if err != nil {
		c.fail(err)
		return
	}
	c.report.Settings = settings
	cc := pc.ConnConfig
	c.report.Target = &Target{Variable: cfg.RuntimeVar(), Host: cc.Host, Port: cc.Port, Database: cc.Database, User: cc.User,
		Endpoint: dbmodule.Address(cc)}

	begin := time.Now()
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		raw, _ := cfg.RuntimeURL()
		c.fail(dbmodule.StartError(err, pc, cfg.RuntimeVar(), raw))
		return
	}
	connectTime := time.Since(begin)
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(ctx) //nolint:errcheck // the check is done
	}()
	c.report.Target.Address = conn.PgConn().Conn().RemoteAddr().String()
	_, c.report.Target.TLS = conn.PgConn().Conn().(*tls.Conn)

	if err := c.server(ctx, conn); err != nil {
		c.fail(err)
		return
	}
	n := c.opts.RoundTrips
	if n <= 0 {
		n = 5
	}
	rtt, err := roundTrip(ctx, conn, n)
	if err != nil {
		c.fail(fmt.Errorf("ping: %w", err))
		return
	}
	c.report.Timing = &Timing{ConnectMS: millis(connectTime), RoundTripMS: millis(rtt), RoundTrips: n}
	c.headroom(ctx, conn, pc.MaxConns, cc.DefaultQueryExecMode)
	if c.opts.Migrations != nil {
		c.migrations(ctx, cfg)
	}
}

// server asks the server who and what it is.
func (c *checker) server(ctx context.Context, conn *pgx.Conn) error {
	var (
		s                Server
		statementTimeout string
	)
	err := conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('server_version_num')::int, pg_is_in_recovery(),
	current_database(), current_user, current_setting('statement_timeout')`, pgx.QueryExecModeSimpleProtocol).
		Scan(&s.Version, &s.VersionNum, &s.InRecovery, &s.Database, &s.User, &statementTimeout)
	if err != nil {
		return fmt.Errorf("ask the server its version: %w", err)
	}
	c.report.Server = &s
	for i, setting := range c.report.Settings {
		if setting.Name == "statement_timeout" && setting.Source == FromDefault {
			// The server's own setting, now that we know it; 0 is none.
			c.report.Settings[i].Value = statementTimeout
		}
	}
	return nil
}

// roundTrip returns the median time of n pings.
func roundTrip(ctx context.Context, conn *pgx.Conn, n int) (time.Duration, error) {
	times := make([]time.Duration, n)
	for i := range times {
		begin := time.Now()
		if err := conn.Ping(ctx); err != nil {
			return 0, err
		}
		times[i] = time.Since(begin)
	}
	slices.Sort(times)
	return times[n/2], nil
}

// headroom compares the pool's size with the connections the server has
// free.
func (c *checker) headroom(ctx context.Context, conn *pgx.Conn, maxConns int32, mode pgx.QueryExecMode) {
	h, err := headroom.Read(ctx, conn.PgConn())
	if err != nil {
		c.warn(err.Error())
		return
	}
	c.report.Headroom = &Headroom{MaxConnections: h.MaxConnections, Reserved: h.Reserved, InUse: h.InUse, Free: h.Free(),
		PoolMaxConns: maxConns, BehindPooler: h.Port != int(conn.Config().Port)}
	for _, w := range headroom.Check(h, conn.Config().Port, maxConns, mode, dbmodule.ExecModeHint) {
		c.warn(w.Message)
	}
}

// migrations compares the files with what the database has applied.
func (c *checker) migrations(ctx context.Context, cfg config.DB) {
	m, err := migrate.New(cfg, c.opts.Migrations, zap.NewNop())
	if err != nil {
		c.fail(fmt.Errorf("migrations: %w", err))
		return
	}
	defer m.Close()
	statuses, err := m.Status(ctx)
	if err != nil {
		c.fail(fmt.Errorf("migrations over %s: %w", cfg.MigrationVar(), err))
		return
	}
	report := &Migrations{Variable: cfg.MigrationVar(), Pending: []string{}}
	for _, s := range statuses {
		switch s.State {
		case migrate.StatePending:
			report.Pending = append(report.Pending, s.File)
			report.Latest = max(report.Latest, s.Version)
		case migrate.StateApplied:
			report.Applied++
			report.Latest = max(report.Latest, s.Version)
			report.Version = max(report.Version, s.Version)
		case migrate.StateNoFile:
			report.Version = max(report.Version, s.Version)
		}
	}
	var unknown []string // applied versions without a file, below this build's latest
	for _, s := range statuses {
		if s.State == migrate.StateNoFile && s.Version < report.Latest {
			unknown = append(unknown, strconv.FormatInt(s.Version, 10))
		}
	}
	c.report.Migrations = report
	if n := len(report.Pending); n > 0 {
		msg := fmt.Sprintf("%d migration(s) pending: %s; apply them with `migrate up`", n, strings.Join(report.Pending, ", "))
		if c.opts.AllowPending {
			c.warn(msg)
		} else {
			c.fail(errors.New(msg))
		}
	}
	if report.Version > report.Latest {
		c.warn(fmt.Sprintf("the database's schema version %d is newer than this build's latest migration, %d", report.Version, report.Latest))
	}
	if len(unknown) > 0 {
		c.warn(fmt.Sprintf("the database has applied version(s) %s, which this build has no migration file for", strings.Join(unknown, ", ")))
	}
}

// millis converts d to milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
