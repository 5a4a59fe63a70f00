package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Switchover performs a planned switchover (`pg_autoctl perform
// switchover`): the primary drains and is shut down, the secondary is
// promoted, and the old primary rejoins as its secondary. It returns once the
// monitor holds the cluster healthy again, which is seconds after writes
// resume.
func (c *Cluster) Switchover(ctx context.Context) error {
	if _, err := c.run(90*time.Second, "perform", "switchover", "--pgdata", filepath.Join(c.dir, "monitor"), "--wait", "60"); err != nil {
		return err
	}
	return c.WaitHealthy(ctx)
}

// Crash kills node's keeper (pg_autoctl and its subprocesses) and its
// postmaster with SIGKILL, and waits until every process of the node is
// gone. Killing the postmaster alone is not enough for a failover: its
// keeper restarts it in place in about half a second. With the keeper gone,
// the monitor promotes the other node once it deems this one unhealthy (see
// TuneFailover). Restart brings the node back.
func (c *Cluster) Crash(node *Node) error {
	node.mu.Lock()
	defer node.mu.Unlock()
	if node.proc == nil {
		return fmt.Errorf("%s is not running", node.Name)
	}
	node.proc.kill()
	node.proc = nil
	// Backends are in process groups of their own; they die once they
	// notice the postmaster is gone.
	return killEnv(node.env()[0])
}

// Restart starts node's keeper again after Crash; it rejoins the cluster on
// its own, as a secondary when the other node was promoted. Wait for it with
// WaitHealthy.
func (c *Cluster) Restart(node *Node) error {
	node.mu.Lock()
	defer node.mu.Unlock()
	if node.proc != nil {
		return fmt.Errorf("%s is running", node.Name)
	}
	p, err := c.startProcess(node.logFile(), node.env(), "run", "--pgdata", node.dataDir())
	if err != nil {
		return err
	}
	node.proc = p
	return nil
}

// Failover says how soon the monitor gives up on an unreachable primary
// and promotes its secondary. The zero value is pg_auto_failover's defaults
// (about 20 seconds to deem a node unhealthy, then up to 30 for it to drain).
type Failover struct {
	HealthCheckPeriod  time.Duration // pgautofailover.health_check_period: between health checks (default 5s)
	HealthCheckTimeout time.Duration // pgautofailover.health_check_timeout: connect timeout of a check (default 5s)
	HealthCheckRetries int           // pgautofailover.health_check_max_retries: failed checks before a node is failed (default 2)
	HealthCheckDelay   time.Duration // pgautofailover.health_check_retry_delay: between retries (default 2s)
	UnhealthyTimeout   time.Duration // pgautofailover.node_considered_unhealthy_timeout: keeper silent this long (default 20s)
	DemoteTimeout      time.Duration // pgautofailover.primary_demote_timeout: wait for the old primary to drain (default 30s)
}

// FastFailover makes the monitor promote within a few seconds of a crash.
// It suits loopback tests only: on a real network, a primary_demote_timeout
// below the keepers' network_partition_timeout (20s) lets a partitioned old
// primary keep accepting writes while the new one is promoted.
var FastFailover = Failover{
	HealthCheckPeriod:  time.Second,
	HealthCheckTimeout: 500 * time.Millisecond,
	HealthCheckRetries: 1,
	HealthCheckDelay:   250 * time.Millisecond,
	UnhealthyTimeout:   2 * time.Second,
	DemoteTimeout:      time.Second,
}

// TuneFailover sets the monitor's failure detection (ALTER SYSTEM, then a
// configuration reload); zero fields are reset to pg_auto_failover's
// defaults.
func (c *Cluster) TuneFailover(ctx context.Context, f Failover) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/pg_auto_failover?sslmode=disable", c.monitorPort))
	if err != nil {
		return fmt.Errorf("connect to the monitor: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	var errs []error
	for name, value := range map[string]string{
		"health_check_period":               ms(f.HealthCheckPeriod),
		"health_check_timeout":              ms(f.HealthCheckTimeout),
		"health_check_max_retries":          strconv.Itoa(f.HealthCheckRetries),
		"health_check_retry_delay":          ms(f.HealthCheckDelay),
		"node_considered_unhealthy_timeout": ms(f.UnhealthyTimeout),
		"primary_demote_timeout":            ms(f.DemoteTimeout),
	} {
		sql := "ALTER SYSTEM SET pgautofailover." + name + " = " + value
		if value == "0" {
			sql = "ALTER SYSTEM RESET pgautofailover." + name
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sql, err))
		}
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		errs = append(errs, fmt.Errorf("reload the monitor's configuration: %w", err))
	}
	return errors.Join(errs...)
}
