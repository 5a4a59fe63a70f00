package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// faultProxy is a toxiproxy, used as a library on loopback, in front of
// the test server; toxics added to it break the network between the pool
// and PostgreSQL. It returns the proxy and a URL through it.
func faultProxy(t *testing.T) (*toxiproxy.Proxy, string) {
	t.Helper()
	u, err := url.Parse(pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(server, strings.ReplaceAll(t.Name(), "/", "_"), "127.0.0.1:0", u.Host)
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	u.Host = proxy.Listen
	return proxy, u.String()
}

// toxic adds a toxic to every connection through proxy, new and existing,
// and returns a function that removes it.
func toxic(t *testing.T, proxy *toxiproxy.Proxy, kind string, attributes string) func() {
	t.Helper()
	name := kind + "_toxic"
	spec := fmt.Sprintf(`{"name": %q, "type": %q, "stream": "downstream", "attributes": %s}`, name, kind, attributes)
	if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(spec)); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := proxy.Toxics.RemoveToxic(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
}

// openThrough opens a module pool to url without pinging it.
func openThrough(t *testing.T, cfg config.DB) *pgxpool.Pool {
	t.Helper()
	pc, err := dbmodule.ParseConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// timed runs a query with a deadline and returns its duration and error,
// failing the test if the error shows the server's password.
func timed(t *testing.T, pool *pgxpool.Pool, timeout time.Duration, sql string) (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	_, err := pool.Exec(ctx, sql)
	if err != nil {
		u, _ := url.Parse(pg.URL(t))
		pw, _ := u.User.Password()
		assertNoSecret(t, pw, "a query error", err.Error())
	}
	return time.Since(start), err
}

// recoveryAfter returns how long after its call the pool runs a query again.
func recoveryAfter(t *testing.T, pool *pgxpool.Pool) time.Duration {
	t.Helper()
	start := time.Now()
	dbtest.WaitFor(t, "queries to succeed again", func() bool {
		_, err := timed(t, pool, time.Second, "SELECT 1")
		return err == nil
	})
	return time.Since(start)
}

func TestLatencyHonoursDeadlines(t *testing.T) {
	proxy, via := faultProxy(t)
	pool := openThrough(t, config.DB{URL: via, MaxConns: 4})
	if _, err := timed(t, pool, time.Second, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	heal := toxic(t, proxy, "latency", `{"latency": 400}`)

	took, err := timed(t, pool, 100*time.Millisecond, "SELECT 1")
	if !errors.Is(err, context.DeadlineExceeded) || took > 100*time.Millisecond+deadlineSlack {
		t.Errorf("query under 400ms latency with a 100ms deadline: %v after %s", err, took)
	}
	// A new connection has to get through the latency too: its acquire ends
	// at the caller's deadline, not at the connect timeout.
	fresh := openThrough(t, config.DB{URL: via})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = fresh.Acquire(ctx)
	if took := time.Since(start); err == nil || took > 150*time.Millisecond+deadlineSlack {
		t.Errorf("acquire of a new connection under latency with a 150ms deadline: %v after %s", err, took)
	}
	if took, err := timed(t, pool, 5*time.Second, "SELECT 1"); err != nil || took < 400*time.Millisecond {
		t.Errorf("with time enough, a query under latency = %v after %s", err, took)
	}
	heal()
	t.Logf("pool serves at full speed %s after the latency ends", recoveryAfter(t, pool).Round(time.Millisecond))
}

func TestStalledConnectionHonoursDeadlines(t *testing.T) {
	proxy, via := faultProxy(t)
	pool := openThrough(t, config.DB{URL: via, MaxConns: 4})
	if _, err := timed(t, pool, time.Second, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	// Data stops flowing; the TCP connections stay open.
	heal := toxic(t, proxy, "timeout", `{"timeout": 0}`)
	for range 3 {
		took, err := timed(t, pool, 200*time.Millisecond, "SELECT 1")
		if err == nil || took > 200*time.Millisecond+deadlineSlack {
			t.Errorf("query on a stalled network with a 200ms deadline: %v after %s", err, took)
		}
	}
	heal()
	recovery := recoveryAfter(t, pool)
	t.Logf("pool serves again %s after the network does", recovery.Round(time.Millisecond))
	if recovery > time.Second {
		t.Errorf("recovery took %s", recovery)
	}
	for range 20 {
		if _, err := timed(t, pool, time.Second, "SELECT 1"); err != nil {
			t.Errorf("query after recovery: %v", err)
		}
	}
}

func TestResetConnectionsFailFast(t *testing.T) {
	proxy, via := faultProxy(t)
	pool := openThrough(t, config.DB{URL: via, MaxConns: 4})
	if _, err := timed(t, pool, time.Second, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	heal := toxic(t, proxy, "reset_peer", `{"timeout": 0}`)
	for range 3 {
		took, err := timed(t, pool, 2*time.Second, "SELECT 1")
		if err == nil || took > time.Second {
			t.Errorf("query over connections that are reset: %v after %s; want a quick error", err, took)
		}
	}
	heal()
	recovery := recoveryAfter(t, pool)
	t.Logf("pool serves again %s after resets stop", recovery.Round(time.Millisecond))
	if recovery > time.Second {
		t.Errorf("recovery took %s", recovery)
	}
}

// The pool pings a connection it hands out when it has been idle. If that
// connection's network has stalled, the ping would wait until the caller's
// deadline; PingTimeout (DB_PING_TIMEOUT) bounds it, so the pool drops the
// connection and opens another within the caller's time.
func TestPingTimeoutBoundsStalledHealthPing(t *testing.T) {
	for _, tt := range []struct {
		name        string
		pingTimeout time.Duration // 0: pgx's own default, no bound
		wantOK      bool
	}{
		{"module default", config.DefaultPingTimeout, true},
		{"pgx default", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			proxy, via := faultProxy(t)
			direct := pg.URL(t)
			pc, err := dbmodule.ParseConfig(config.DB{URL: via, MaxConns: 1})
			if err != nil {
				t.Fatal(err)
			}
			pc.PingTimeout = tt.pingTimeout
			pc.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return true }
			// The first connection goes through the proxy, later ones straight
			// to the server: only the idle connection's network stalls.
			directHost := hostOf(t, direct)
			var dials atomic.Int32
			pc.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if dials.Add(1) > 1 {
					addr = directHost
				}
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}
			pool, err := pgxpool.NewWithConfig(context.Background(), pc)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			if _, err := timed(t, pool, time.Second, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
			toxic(t, proxy, "timeout", `{"timeout": 0}`)

			const deadline = 3 * time.Second
			took, err := timed(t, pool, deadline, "SELECT 1")
			t.Logf("PingTimeout %s: query %v after %s", tt.pingTimeout, err, took.Round(time.Millisecond))
			if tt.wantOK && (err != nil || took > tt.pingTimeout+deadlineSlack+200*time.Millisecond) {
				t.Errorf("with PingTimeout %s the query = %v after %s; want success soon after the ping times out", tt.pingTimeout, err, took)
			}
			if !tt.wantOK && (err == nil || took < deadline) {
				t.Errorf("without PingTimeout the stalled ping should eat the whole %s deadline; got %v after %s", deadline, err, took)
			}
		})
	}
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
