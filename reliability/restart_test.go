package reliability_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fxpg/fxpg/app"
	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/httpserver"
	"github.com/fxpg/fxpg/internal/pgtemp"
)

// deadlineSlack is how far past its deadline a call may return: scheduling
// on two cores shared with the server, not waiting on the network.
const deadlineSlack = 100 * time.Millisecond

// service is the whole app on cfg, with an observed logger.
type service struct {
	app  *fx.App
	q    dbmodule.Querier
	http *httpserver.Server
	logs *observer.ObservedLogs
}

func startService(t *testing.T, opts ...fx.Option) *service {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	s := &service{logs: logs}
	s.app = app.New(append([]fx.Option{
		fx.Replace(config.App{HTTPAddr: "127.0.0.1:0"}),
		fx.Replace(zap.New(core)),
		fx.Populate(&s.q, &s.http),
	}, opts...)...)
	if err := s.app.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.app.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

// readyzWatch polls /readyz until stopped, keeping every answer.
type readyzWatch struct {
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	bodies []string
	codes  map[int]int
}

func watchReadyz(addr string) *readyzWatch {
	w := &readyzWatch{stop: make(chan struct{}), done: make(chan struct{}), codes: map[int]int{}}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				w.mu.Lock()
				w.codes[resp.StatusCode]++
				w.bodies = append(w.bodies, string(b))
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *readyzWatch) finish() ([]string, map[int]int) {
	close(w.stop)
	<-w.done
	return w.bodies, w.codes
}

// A PostgreSQL restart or crash while 32 goroutines query through a pool of
// 10: no call outlives its deadline, the pool serves again within a second
// of the server's return, every query after that succeeds, and nothing
// shows the password. The app is never restarted.
func TestSurvivesDatabaseRestartAndCrash(t *testing.T) {
	for _, tt := range []struct {
		name   string
		outage func(context.Context, *pgtemp.Server) error
	}{
		{"fast shutdown and restart", func(ctx context.Context, srv *pgtemp.Server) error { return srv.Restart(ctx) }},
		{"SIGKILL and restart", func(ctx context.Context, srv *pgtemp.Server) error { srv.Kill(); return srv.Start(ctx) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			srv, err := pgtemp.Start(ctx, pgtemp.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			s := startService(t, fx.Replace(config.DB{URL: srv.URL("postgres"), MaxConns: 10}))

			const timeout = 500 * time.Millisecond
			l := startLoad(32, timeout, func(ctx context.Context) error {
				var n int
				return s.q.QueryRow(ctx, "SELECT count(*) FROM pg_class").Scan(&n)
			})
			dbtest.WaitFor(t, "the load to warm up", func() bool { return succeededAfter(l.snapshot(), time.Time{}) >= 500 })
			readyz := watchReadyz(s.http.Addr().String())

			down := time.Now()
			if err := tt.outage(ctx, srv); err != nil {
				t.Fatal(err)
			}
			up := time.Now()
			dbtest.WaitFor(t, "queries to succeed again", func() bool { return succeededAfter(l.snapshot(), up) >= 1 })
			dbtest.WaitFor(t, "more load after recovery", func() bool { return succeededAfter(l.snapshot(), up) >= 2000 })
			calls := l.finish()
			bodies, codes := readyz.finish()

			o := summarise(calls, up)
			t.Logf("outage %s; pool serving again %s after the server; %d calls, %d failed (all during the outage), "+
				"latest return %s past a deadline; /readyz answers %v",
				up.Sub(down).Round(time.Millisecond), o.recovery.Round(time.Millisecond), o.calls, o.failed,
				o.maxOverrun.Round(time.Millisecond), codes)
			if o.recovery > time.Second {
				t.Errorf("the pool served again %s after the server came back; want within 1s", o.recovery)
			}
			if len(o.failedLater) > 0 {
				t.Errorf("%d queries failed after the pool had recovered, the first: %v", len(o.failedLater), o.failedLater[0].err)
			}
			if o.maxOverrun > deadlineSlack {
				t.Errorf("a call returned %s past its %s deadline", o.maxOverrun, timeout)
			}
			if len(l.panics) > 0 {
				t.Errorf("workers panicked: %v", l.panics)
			}
			if code, _ := getReadyz(t, s.http.Addr().String()); code != http.StatusOK {
				t.Errorf("/readyz after recovery = %d", code)
			}
			pw := srv.Password()
			assertNoSecret(t, pw, "a query error", errTexts(calls)...)
			assertNoSecret(t, pw, "a log entry", logTexts(s.logs)...)
			assertNoSecret(t, pw, "a /readyz answer", bodies...)
			assertNoSecret(t, pw, "a panic", l.panics...)
		})
	}
}

func getReadyz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
