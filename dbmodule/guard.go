package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
)

// A Guard holds a pool's guardrails, each on only when its setting asks:
//
//   - leak detection (DB_LEAK_THRESHOLD): a connection held longer than the
//     threshold is logged once, with the stack that acquired it;
//   - an acquire timeout (DB_ACQUIRE_TIMEOUT): a caller waits that long at
//     most for a free connection, then gets a *PoolExhaustedError;
//   - live credentials (DB_PASSWORD_FILE or a PasswordProvider): each new
//     connection takes the current password.
//
// With none of them set, the Guard installs nothing and the pool costs what
// it costs without it. Its Stats are for metrics. One Guard serves one pool.
type Guard struct {
	leak        *leakDetector   // nil when off
	acquire     *acquireLimiter // nil when off
	credentials *credentials    // nil when the URL's password is used

	installed atomic.Bool
	// retryBudget bounds how long the module's Querier rides through
	// rejected credentials: the pool's connect timeout, set on install.
	retryBudget atomic.Int64
	retries     atomic.Int64
}

// GuardParams are NewGuard's dependencies.
type GuardParams struct {
	fx.In

	Config config.DB
	Logger *zap.Logger `optional:"true"`
	// Passwords, when the app provides one (see AsPasswordProvider), gives
	// the password of every new connection instead of the URL.
	Passwords PasswordProvider `optional:"true"`
}

// NewGuard makes the guardrails that p.Config asks for. It does no I/O and
// starts nothing: leak detection watches only while connections are held.
func NewGuard(p GuardParams) (*Guard, error) {
	if err := p.Config.Validate(); err != nil {
		return nil, err
	}
	log := zap.NewNop()
	if p.Logger != nil {
		log = p.Logger.Named("db")
	}
	return newGuard(p.Config, log, p.Passwords)
}

// newGuard is NewGuard with the logger as given.
func newGuard(cfg config.DB, log *zap.Logger, passwords PasswordProvider) (*Guard, error) {
	if log == nil {
		log = zap.NewNop()
	}
	g := &Guard{}
	if cfg.LeakThreshold > 0 {
		g.leak = newLeakDetector(cfg.LeakThreshold, log)
	}
	if cfg.AcquireTimeout > 0 {
		g.acquire = newAcquireLimiter(cfg.AcquireTimeout)
	}
	switch {
	case cfg.PasswordFile != "" && passwords != nil:
		return nil, &config.VarError{Var: "DB_PASSWORD_FILE", Err: errors.New("is set, and the app provides a PasswordProvider too: use one of them")}
	case cfg.PasswordFile != "":
		g.credentials = &credentials{file: cfg.PasswordFile, log: log}
	case passwords != nil:
		g.credentials = &credentials{cache: &passwordCache{provider: passwords}, log: log}
	}
	return g, nil
}

// AsPasswordProvider annotates a constructor of a PasswordProvider so that
// the module's pool takes the password of each new connection from it:
//
//	fx.Provide(dbmodule.AsPasswordProvider(newIAMTokens))
func AsPasswordProvider(constructor any) any {
	return fx.Annotate(constructor, fx.As(new(PasswordProvider)))
}

// WithGuard installs g in the pool that ParseConfig or Open configures, for
// programs without fx that want its Stats or a PasswordProvider. Without it,
// they get a Guard of their own from cfg.
func WithGuard(g *Guard) Option {
	return func(o *options) { o.guard = g }
}

// GuardStats are a Guard's counters, for a metrics collector. Each is zero
// while its guardrail is off.
type GuardStats struct {
	// Leaks counts connections held past DB_LEAK_THRESHOLD, each once.
	Leaks int64
	// HeldConns is how many connections callers hold now (leak detection on).
	HeldConns int64

	// AcquireTimeouts counts acquires that gave up at DB_ACQUIRE_TIMEOUT
	// while their caller's context was still live.
	AcquireTimeouts int64
	// AcquireWaiting is how many callers are in Acquire now.
	AcquireWaiting int64
	// AcquireWait is the distribution of how long acquires took, successful
	// or not (DB_ACQUIRE_TIMEOUT on).
	AcquireWait Histogram

	// PasswordFetches counts calls of the PasswordProvider, or reads of
	// DB_PASSWORD_FILE; PasswordFailures those that failed.
	PasswordFetches, PasswordFailures int64
	// CredentialRetries counts calls the module's Querier retried because a
	// new connection's password was rejected or unavailable.
	CredentialRetries int64
}

// Stats returns the Guard's counters now. A nil Guard has none.
func (g *Guard) Stats() GuardStats {
	var s GuardStats
	if g == nil {
		return s
	}
	if g.leak != nil {
		s.Leaks, s.HeldConns = g.leak.leaks.Load(), g.leak.held.Load()
	}
	if g.acquire != nil {
		s.AcquireTimeouts, s.AcquireWaiting = g.acquire.timeouts.Load(), g.acquire.waiting.Load()
		s.AcquireWait = g.acquire.wait.snapshot()
	}
	if g.credentials != nil {
		s.PasswordFetches, s.PasswordFailures = g.credentials.fetches.Load(), g.credentials.failures.Load()
	}
	s.CredentialRetries = g.retries.Load()
	return s
}

// Guardrails says which of a Guard's guardrails are on.
type Guardrails struct {
	LeakDetection   bool // DB_LEAK_THRESHOLD
	AcquireTimeout  bool // DB_ACQUIRE_TIMEOUT
	LiveCredentials bool // DB_PASSWORD_FILE or a PasswordProvider
}

// Guardrails returns which guardrails g has on, so that a metrics collector
// exports the counters of those only: the Stats of one that is off stay
// zero, which would read as "nothing happened". A nil Guard has none on.
func (g *Guard) Guardrails() Guardrails {
	if g == nil {
		return Guardrails{}
	}
	return Guardrails{LeakDetection: g.leak != nil, AcquireTimeout: g.acquire != nil, LiveCredentials: g.credentials != nil}
}

// installGuards installs the Guard of o, or a new one from cfg, in pc:
// hooks chained after those pc has, tracers after its Tracer. It is how
// ParseConfig, Open and NewPool get their guardrails.
func installGuards(pc *pgxpool.Config, cfg config.DB, o options) error {
	g := o.guard
	if g == nil {
		var err error
		if g, err = newGuard(cfg, o.logger, nil); err != nil {
			return err
		}
	}
	return g.install(pc)
}

// install chains the Guard's hooks and tracers into pc.
func (g *Guard) install(pc *pgxpool.Config) error {
	if g.leak == nil && g.acquire == nil && g.credentials == nil {
		return nil // nothing on: nothing on the query path either
	}
	if !g.installed.CompareAndSwap(false, true) {
		return errors.New("dbmodule: a Guard serves one pool; make one per pool")
	}
	g.retryBudget.Store(int64(pc.ConnConfig.ConnectTimeout))
	var (
		acquire []pgxpool.AcquireTracer
		release []pgxpool.ReleaseTracer
		connect []pgx.ConnectTracer
	)
	if g.leak != nil {
		acquire, release = append(acquire, g.leak), append(release, g.leak)
		next := pc.BeforeClose
		pc.BeforeClose = func(c *pgx.Conn) {
			g.leak.forget(c)
			if next != nil {
				next(c)
			}
		}
	}
	if g.acquire != nil {
		// Last, so that the context it returns is the one the acquire
		// waits on, and its timeout error is what Acquire returns.
		acquire = append(acquire, g.acquire)
		// An acquire that opens a connection, or takes an idle one, has
		// its slot: the timeout stops there, before any other hook runs.
		next := pc.BeforeConnect
		pc.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
			holding(ctx)
			if next != nil {
				return next(ctx, cc)
			}
			return nil
		}
		shouldPing := pc.ShouldPing
		pc.ShouldPing = func(ctx context.Context, p pgxpool.ShouldPingParams) bool {
			holding(ctx)
			if shouldPing != nil {
				return shouldPing(ctx, p)
			}
			return p.IdleDuration > time.Second // pgxpool's default
		}
	}
	if g.credentials != nil {
		connect = append(connect, g.credentials)
		next := pc.BeforeConnect
		pc.BeforeConnect = chainBeforeConnect(next, g.credentials.beforeConnect)
	}
	pc.ConnConfig.Tracer = withPoolTracers(pc.ConnConfig.Tracer, acquire, release, connect)
	return nil
}

// withPoolTracers adds pool and connect tracers to t, which may be nil, a
// multitracer or any other tracer. They join a multitracer's lists only,
// so that queries do not call them.
func withPoolTracers(t pgx.QueryTracer, acquire []pgxpool.AcquireTracer, release []pgxpool.ReleaseTracer, connect []pgx.ConnectTracer) pgx.QueryTracer {
	var m *multitracer.Tracer
	switch t := t.(type) {
	case nil:
		m = &multitracer.Tracer{}
	case *multitracer.Tracer:
		c := *t
		m = &c
		// Fresh slices, so that appending never writes into the original's.
		m.PoolAcquireTracers = append([]pgxpool.AcquireTracer(nil), t.PoolAcquireTracers...)
		m.PoolReleaseTracers = append([]pgxpool.ReleaseTracer(nil), t.PoolReleaseTracers...)
		m.ConnectTracers = append([]pgx.ConnectTracer(nil), t.ConnectTracers...)
	default:
		m = multitracer.New(t)
	}
	m.PoolAcquireTracers = append(m.PoolAcquireTracers, acquire...)
	m.PoolReleaseTracers = append(m.PoolReleaseTracers, release...)
	m.ConnectTracers = append(m.ConnectTracers, connect...)
	return m
}

// A Histogram is a distribution of durations in cumulative buckets, as
// Prometheus histograms have them.
type Histogram struct {
	Count   uint64
	Sum     time.Duration
	Buckets []Bucket // by UpperBound, ascending
}

// A Bucket counts the observations at or below UpperBound.
type Bucket struct {
	UpperBound time.Duration
	Count      uint64 // cumulative
}

// histogramBounds suit waits for a connection: from an idle one handed
// over at once to the seconds of a saturated pool.
var histogramBounds = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// histogram records durations with an atomic add per observation.
type histogram struct {
	counts [len(histogramBounds) + 1]atomic.Uint64 // the last is +Inf
	sum    atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(histogramBounds) && d > histogramBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

func (h *histogram) snapshot() Histogram {
	s := Histogram{Sum: time.Duration(h.sum.Load()), Buckets: make([]Bucket, len(histogramBounds))}
	var n uint64
	for i, b := range histogramBounds {
		n += h.counts[i].Load()
		s.Buckets[i] = Bucket{UpperBound: b, Count: n}
	}
	s.Count = n + h.counts[len(histogramBounds)].Load()
	return s
}

// String describes s briefly, for logs.
func (s GuardStats) String() string {
	return fmt.Sprintf("leaks=%d held=%d acquire_timeouts=%d waiting=%d acquires=%d password_fetches=%d password_failures=%d credential_retries=%d",
		s.Leaks, s.HeldConns, s.AcquireTimeouts, s.AcquireWaiting, s.AcquireWait.Count, s.PasswordFetches, s.PasswordFailures, s.CredentialRetries)
}

// dynamicPasswords reports whether new connections take their password
// from DB_PASSWORD_FILE or a PasswordProvider, which may change under them.
func (g *Guard) dynamicPasswords() bool { return g != nil && g.credentials != nil }
