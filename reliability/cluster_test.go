package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/internal/pgcluster"
)

// cluster is the pg_auto_failover cluster (a monitor and two nodes) the
// Cluster tests share; TestMain stops it. Each test leaves it healthy.
var cluster pgcluster.Lazy

// clusterApp is dbmodule on the cluster, with both handles.
type clusterApp struct {
	q     dbmodule.Querier
	reads dbmodule.ReadQuerier
	tx    *dbmodule.Transactor
	roles *dbmodule.Roles
	logs  *observer.ObservedLogs
	dials *dialCounter
}

func startClusterApp(t *testing.T, cfg config.DB) *clusterApp {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	a := &clusterApp{logs: logs, dials: &dialCounter{}}
	app := fx.New(dbmodule.Module, fx.Replace(cfg), fx.Supply(zap.New(core)), fx.NopLogger,
		fx.Provide(dbmodule.AsTracer(func() *dialCounter { return a.dials })),
		fx.Populate(&a.q, &a.reads, &a.tx, &a.roles))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := app.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return a
}

// dialCounter counts the connects of the primary's pool: its URL lists
// both nodes, a replica pool's one.
type dialCounter struct{ n atomic.Int64 }

func (d *dialCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (d *dialCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (d *dialCounter) TraceConnectStart(ctx context.Context, data pgx.TraceConnectStartData) context.Context {
	if len(data.ConnConfig.Fallbacks) > 0 {
		d.n.Add(1)
	}
	return ctx
}
func (d *dialCounter) TraceConnectEnd(context.Context, pgx.TraceConnectEndData) {}

// healthyCluster returns the shared cluster once it has a primary and a
// secondary.
func healthyCluster(t *testing.T) *pgcluster.Cluster {
	t.Helper()
	c := cluster.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// inRecovery asks q's server whether it is a standby.
func inRecovery(t *testing.T, q dbmodule.Querier) bool {
	t.Helper()
	var r bool
	if err := q.QueryRow(context.Background(), "SELECT pg_is_in_recovery()").Scan(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// createTable makes an empty table of written ids on the primary.
func createTable(t *testing.T, q dbmodule.Querier, name string) {
	t.Helper()
	for _, sql := range []string{"DROP TABLE IF EXISTS " + name, "CREATE TABLE " + name + " (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"} {
		if _, err := q.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
}

// Reads through ReadQuerier go to the standby, writes through Querier to
// the primary, and the app is ready with both.
func TestClusterReadsGoToTheStandby(t *testing.T) {
	c := healthyCluster(t)
	a := startClusterApp(t, config.DB{URL: c.PrimaryURL("postgres"), ReadURL: c.ReadURL("postgres", "standby")})
	if inRecovery(t, a.q) {
		t.Error("Querier reached a standby")
	}
	standby := 0
	for range 50 {
		if inRecovery(t, a.reads) {
			standby++
		}
	}
	t.Logf("Querier on the primary; %d of 50 reads through ReadQuerier on the standby", standby)
	if standby != 50 {
		t.Errorf("%d of 50 reads went to the standby, want all", standby)
	}
	if err := a.roles.Replicas().Check(context.Background()); err != nil {
		t.Errorf("replicas not all in rotation: %v", err)
	}
}

// A write is one InTx of a writer.
type write struct {
	id         int64
	start, end time.Time
	err        error
}

// writers run InTx inserts of increasing ids from several goroutines, each
// paced at one write per interval, each with its own deadline.
type writers struct {
	stopped chan struct{}
	wg      sync.WaitGroup
	next    atomic.Int64

	mu     sync.Mutex
	writes []write
}

const writeDeadline = 5 * time.Second

func startWriters(tx *dbmodule.Transactor, table string, goroutines int, interval time.Duration) *writers {
	w := &writers{stopped: make(chan struct{})}
	for range goroutines {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-w.stopped:
					return
				case <-tick.C:
				}
				id := w.next.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), writeDeadline)
				wr := write{id: id, start: time.Now()}
				wr.err = tx.InTx(ctx, func(q dbmodule.Querier) error {
					_, err := q.Exec(ctx, "INSERT INTO "+table+" (id) VALUES ($1)", id)
					return err
				})
				wr.end = time.Now()
				cancel()
				w.mu.Lock()
				w.writes = append(w.writes, wr)
				w.mu.Unlock()
			}
		}()
	}
	return w
}

func (w *writers) snapshot() []write {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.writes)
}

func (w *writers) stop() []write {
	close(w.stopped)
	w.wg.Wait()
	return w.snapshot()
}

// okAfter counts the writes that succeeded after at.
func okAfter(writes []write, at time.Time) int {
	n := 0
	for _, w := range writes {
		if w.err == nil && w.end.After(at) {
			n++
		}
	}
	return n
}

// present reads which ids of table the primary has.
func present(t *testing.T, url, table string) map[int64]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[int64]bool, len(ids))
	for _, id := range ids {
		have[id] = true
	}
	return have
}

// verdict sorts writes by what became of them on the final primary.
type verdict struct {
	acked, lost int // succeeded; succeeded but absent
	// Failed and absent, by why: never reached a server (what ride-through
	// must leave at zero), gave up at its deadline while the cluster still
	// refused writes, the connection died mid-transaction before COMMIT
	// (InTx could run it again), or after COMMIT was sent (outcome unknown
	// to the app; it did not commit).
	unsent, refusedThroughout, lostInTx, commitUnknown int
	ambiguous                                          int // failed but present: committed
	overdue                                            int // returned past their deadline (and slack)
	codes                                              map[string]int
}

// judge sorts writes; refused are the times the probe saw the cluster
// refuse writes.
func judge(writes []write, have map[int64]bool, refused []pgcluster.Outage) verdict {
	v := verdict{codes: map[string]int{}}
	for _, w := range writes {
		if w.end.Sub(w.start) > writeDeadline+deadlineSlack {
			v.overdue++
		}
		kind := failureKind(w.err)
		switch {
		case w.err == nil:
			v.acked++
			if !have[w.id] {
				v.lost++
			}
			continue
		case have[w.id]:
			v.ambiguous++
			kind = "ambiguous " + kind
		case strings.HasPrefix(w.err.Error(), "commit: "):
			v.commitUnknown++
			kind = "commit " + kind
		case errors.As(w.err, new(*pgconn.ConnectError)) || kind == "57P03":
			if refusedAt(refused, w.end) {
				v.refusedThroughout++
				kind = "gave up while refused " + kind
			} else {
				v.unsent++
			}
		default:
			v.lostInTx++
		}
		v.codes[kind]++
	}
	return v
}

// refusedAt reports whether the cluster was refusing writes at a time, as
// when a call gave up at its deadline before any write could succeed.
func refusedAt(outages []pgcluster.Outage, at time.Time) bool {
	for _, o := range outages {
		if at.After(o.LastOK) && at.Before(o.FirstOK) {
			return true
		}
	}
	return false
}

// failureKind names an error by SQLSTATE, or by what befell the connection.
func failureKind(err error) string {
	var pgErr *pgconn.PgError
	var ce *pgconn.ConnectError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pgErr):
		return pgErr.Code
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.As(err, &ce):
		return "connect"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), strings.Contains(err.Error(), "conn closed"):
		return "connection lost"
	}
	return "other: " + err.Error()
}

func (v verdict) String() string {
	codes := ""
	for _, k := range slices.Sorted(maps.Keys(v.codes)) {
		codes += fmt.Sprintf(" %s×%d", k, v.codes[k])
	}
	return fmt.Sprintf("%d acknowledged (%d lost); failed: %d never sent, %d gave up while the cluster refused writes, %d lost mid-transaction, %d at commit; "+
		"%d ambiguous; %d past their deadline;%s", v.acked, v.lost, v.unsent, v.refusedThroughout, v.lostInTx, v.commitUnknown,
		v.ambiguous, v.overdue, codes)
}

// The whole service on the cluster: /readyz stays ready while a replica is
// out of rotation and says which, by index; /metrics labels each pool by
// role.
func TestClusterServiceReportsEachRole(t *testing.T) {
	c := healthyCluster(t)
	ctx := context.Background()
	var reads dbmodule.ReadQuerier
	s := startService(t, fx.Replace(config.DB{URL: c.PrimaryURL("postgres"), ReadURL: c.ReadURL("postgres", "standby"), ReplicaMaxLag: time.Second}),
		fx.Populate(&reads))
	addr := s.http.Addr().String()
	if code, body := getReadyz(t, addr); code != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz on a healthy cluster = %d %q", code, body)
	}
	standby, err := c.Standby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, labels := range [][]string{{`replica=""`, `role="primary"`}, {fmt.Sprintf(`replica="127.0.0.1:%d"`, standby.Port), `role="replica"`}} {
		found := false
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "pgxpool_acquires_total{") && strings.Contains(line, labels[0]) && strings.Contains(line, labels[1]) {
				found = true
			}
		}
		if !found {
			t.Errorf("/metrics lacks pgxpool_acquires_total with %v", labels)
		}
	}

	// Writes go on while the standby's replay is paused, so it falls behind.
	admin, err := pgx.Connect(ctx, standby.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(ctx, "SELECT pg_wal_replay_resume()") //nolint:errcheck // best effort; the next test waits for a healthy cluster
	createTable(t, s.q, "role_writes")
	var code int
	var ready string
	waitFor(t, "/readyz to report the lagging replica", func() bool {
		if _, err := s.q.Exec(ctx, "INSERT INTO role_writes (id) VALUES ((random() * 1e15)::bigint)"); err != nil {
			t.Fatal(err)
		}
		code, ready = getReadyz(t, addr)
		return strings.Contains(ready, "database replicas:")
	})
	t.Logf("/readyz with the standby lagging: %d %q", code, ready)
	if code != http.StatusOK || !strings.Contains(ready, "lagging") || strings.Contains(ready, "127.0.0.1") {
		t.Errorf("/readyz = %d %q; want 200 naming the lagging replica by index, with no address", code, ready)
	}
	if inRecovery(t, reads) {
		t.Error("a read went to the lagging standby")
	}
}
