package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
)

// Credentials that change while the app runs. With DB_PASSWORD_FILE, or a
// PasswordProvider from the app, the pool's BeforeConnect sets the password
// of every new connection: read from the file each time, or asked of the
// provider, whose answer is cached until shortly before the expiry it gives,
// with one call for a burst of connects. Connections already open keep
// working (PostgreSQL checks a password only at login); they retire at
// DB_MAX_CONN_LIFETIME, plus its jitter, or at once with RetireConnections.
//
// Between the server taking a new password and the app seeing it (or the
// other way round), a new connection is refused (28P01). No statement was
// sent, so the module's Querier waits briefly and tries again, with the
// password read anew, for up to DB_CONNECT_TIMEOUT (see rideThrough.neverSent).

// ErrPasswordUnavailable is what errors.Is finds in the error of a new
// connection that got no password: DB_PASSWORD_FILE could not be read or
// was empty, or the PasswordProvider failed with nothing cached. Connections
// already open are not affected.
var ErrPasswordUnavailable = errors.New("database password unavailable")

// A PasswordProvider gives the password of new connections, for short-lived
// tokens (AWS RDS IAM, Cloud SQL IAM, Azure AD / Entra ID) or secrets from a
// vault. Provide one to the module with AsPasswordProvider, or to Open with
// WithGuard.
//
// Password is called from the pool's BeforeConnect, with a context that ends
// when the pool closes and after providerTimeout at most. It returns the
// password and when it expires: the pool uses it for new connections until
// shortly before then (a quarter of its lifetime early, a minute at most),
// asking again after that, once for all the connects that need it. A zero
// expiry means "do not cache": every new connection asks. When a refresh
// fails, the cached password is used until it expires. When the server
// rejects a cached password, the cache is dropped.
//
// Its error should never contain the password; the module wraps it with
// ErrPasswordUnavailable.
type PasswordProvider interface {
	Password(ctx context.Context, target PasswordTarget) (password string, expires time.Time, err error)
}

// PasswordFunc is a PasswordProvider as a function.
type PasswordFunc func(ctx context.Context, target PasswordTarget) (password string, expires time.Time, err error)

// Password implements PasswordProvider.
func (f PasswordFunc) Password(ctx context.Context, target PasswordTarget) (string, time.Time, error) {
	return f(ctx, target)
}

// PasswordTarget is where a new connection goes, for tokens bound to it (an
// RDS IAM token signs host:port and user). The password serves all the
// pool's hosts.
type PasswordTarget struct {
	Host     string
	Port     uint16
	User     string
	Database string
}

// providerTimeout bounds one call of a PasswordProvider: a token service
// that hangs must not hold a connect, and the connection slot, forever.
const providerTimeout = 15 * time.Second

// RetireConnections closes pool's connections so that new ones open with
// the current credentials: idle ones at once, those in use when released.
// Queries in flight finish. Call it after a rotation that must take effect
// before DB_MAX_CONN_LIFETIME retires the old connections.
func RetireConnections(pool *pgxpool.Pool) { pool.Reset() }

// credentials sets the password of new connections: from a file, read at
// each connect, or from a provider through a cache.
type credentials struct {
	file  string         // DB_PASSWORD_FILE, or ""
	cache *passwordCache // the provider's, or nil
	log   *zap.Logger

	fetches, failures atomic.Int64
}

var _ pgx.ConnectTracer = (*credentials)(nil)

// chainBeforeConnect runs next, if any, then hook.
func chainBeforeConnect(next, hook func(context.Context, *pgx.ConnConfig) error) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cc *pgx.ConnConfig) error {
		if next != nil {
			if err := next(ctx, cc); err != nil {
				return err
			}
		}
		return hook(ctx, cc)
	}
}

// beforeConnect sets cc's password. It runs as the pool's BeforeConnect.
func (c *credentials) beforeConnect(ctx context.Context, cc *pgx.ConnConfig) error {
	var (
		pw  string
		err error
	)
	if c.cache != nil {
		pw, err = c.cache.get(ctx, PasswordTarget{Host: cc.Host, Port: cc.Port, User: cc.User, Database: cc.Database}, c)
	} else {
		pw, err = c.readFile()
	}
	if err != nil {
		return err
	}
	cc.Password = pw
	return nil
}

// readFile reads DB_PASSWORD_FILE, without its trailing line break. Its
// errors name the file, never its content.
func (c *credentials) readFile() (string, error) {
	c.fetches.Add(1)
	b, err := os.ReadFile(c.file)
	if err == nil && strings.TrimRight(string(b), "\r\n") == "" {
		err = fmt.Errorf("%s is empty", c.file)
	}
	if err != nil {
		c.failures.Add(1)
		return "", fmt.Errorf("%w: %w", ErrPasswordUnavailable, &config.VarError{Var: "DB_PASSWORD_FILE", Err: err})
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

type usedPasswordKey struct{}

// TraceConnectStart implements pgx.ConnectTracer: it remembers the password
// a connect uses, for TraceConnectEnd. Connects are rare; the allocation is
// of no matter.
func (c *credentials) TraceConnectStart(ctx context.Context, data pgx.TraceConnectStartData) context.Context {
	if c.cache == nil {
		return ctx
	}
	return context.WithValue(ctx, usedPasswordKey{}, data.ConnConfig.Password)
}

// TraceConnectEnd implements pgx.ConnectTracer: a password the server
// rejects leaves the cache, so that the next connect asks the provider.
func (c *credentials) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	if c.cache == nil || !passwordRejected(data.Err) {
		return
	}
	if pw, ok := ctx.Value(usedPasswordKey{}).(string); ok {
		c.cache.reject(pw)
	}
}

// passwordRejected reports whether err is the server refusing a login for
// its password (28P01 invalid_password).
func passwordRejected(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "28P01"
}

// passwordCache caches a provider's password until shortly before it
// expires; concurrent connects that find it stale wait for one call.
type passwordCache struct {
	provider PasswordProvider

	mu       sync.Mutex
	password string
	fresh    time.Time // refresh after this
	expires  time.Time // and never use it after this; zero: nothing cached
	flight   *passwordFlight
}

// passwordFlight is one call of the provider, which others may wait for.
type passwordFlight struct {
	done     chan struct{}
	password string
	err      error
}

// get returns the cached password while fresh, else one from the provider.
func (p *passwordCache) get(ctx context.Context, target PasswordTarget, c *credentials) (string, error) {
	p.mu.Lock()
	if !p.expires.IsZero() && time.Now().Before(p.fresh) {
		pw := p.password
		p.mu.Unlock()
		return pw, nil
	}
	f := p.flight
	if f == nil {
		f = &passwordFlight{done: make(chan struct{})}
		p.flight = f
		p.mu.Unlock()
		p.fetch(ctx, target, f, c)
	} else {
		p.mu.Unlock()
	}
	select {
	case <-f.done:
		return f.password, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("%w: waiting for the password provider: %w", ErrPasswordUnavailable, ctx.Err())
	}
}

// fetch calls the provider for f and caches what it returns.
func (p *passwordCache) fetch(ctx context.Context, target PasswordTarget, f *passwordFlight, c *credentials) {
	var (
		pw      string
		expires time.Time
		err     = errors.New("the password provider panicked")
	)
	defer func() {
		now := time.Now()
		p.mu.Lock()
		p.flight = nil
		switch {
		case err == nil && pw == "":
			err = errors.New("the password provider returned an empty password")
			fallthrough
		case err != nil:
			c.failures.Add(1)
			if !p.expires.IsZero() && now.Before(p.expires) {
				// Not fresh, but not expired either: better than nothing.
				f.password = p.password
				c.log.Warn("database password provider failed; new connections use the cached password until it expires",
					zap.Time("expires", p.expires), zap.Error(err))
			} else {
				f.err = fmt.Errorf("%w: password provider: %w", ErrPasswordUnavailable, err)
			}
		default:
			f.password = pw
			if expires.After(now) {
				life := expires.Sub(now)
				p.password, p.expires, p.fresh = pw, expires, expires.Add(-min(life/4, time.Minute))
			} else {
				p.password, p.expires = "", time.Time{}
			}
		}
		p.mu.Unlock()
		close(f.done)
	}()
	c.fetches.Add(1)
	ctx, cancel := context.WithTimeout(ctx, providerTimeout)
	defer cancel()
	pw, expires, err = p.provider.Password(ctx, target)
}

// reject drops pw from the cache, if it is still the cached password.
func (p *passwordCache) reject(pw string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.expires.IsZero() && p.password == pw {
		p.password, p.expires = "", time.Time{}
	}
}

// credentialsRefused reports whether err is a new connection refused for
// its password, or one that got none: failures of the acquire, before any
// statement was sent.
func credentialsRefused(err error) bool {
	if errors.Is(err, ErrPasswordUnavailable) {
		return true
	}
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr) && passwordRejected(err)
}
