package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/internal/pgtemp"
)

// dirPrefix names cluster directories in the temp root; leftovers are found
// by it.
const dirPrefix = "pgcluster-"

// InstallHint is the command that installs what Start needs.
const InstallHint = "scripts/ensure-deps pg_auto_failover (or: apt-get install -y pg-auto-failover-cli postgresql-%s-auto-failover)"

// A Cluster is a running pg_auto_failover formation: a monitor and its nodes.
type Cluster struct {
	dir     string
	autoctl string // pg_autoctl
	pgBin   string // PostgreSQL's server binaries
	owner   pgtemp.Owner
	lock    *os.File // held while the cluster lives; see cleanLeftovers

	monitorPort int
	monitor     *process
	nodes       []*Node

	closeOnce sync.Once
	closeErr  error
}

// A Node is one PostgreSQL server of the cluster with its keeper.
type Node struct {
	Name string // as the monitor knows it: node1, node2
	Port int    // on 127.0.0.1

	c    *Cluster
	mu   sync.Mutex
	proc *process // its keeper; nil after Crash until Restart
}

// Start builds and starts a monitor and two nodes, and waits until one is
// primary and the other its synchronous secondary. ctx bounds the start
// (about 20 seconds here); Close stops it all.
func Start(ctx context.Context) (*Cluster, error) {
	pgBin, err := pgtemp.BinDir(ctx)
	if err != nil {
		return nil, err
	}
	major := filepath.Base(filepath.Dir(pgBin))
	autoctl, err := exec.LookPath("pg_autoctl")
	if err != nil {
		return nil, fmt.Errorf("pg_auto_failover is not installed (pg_autoctl not on PATH): run "+InstallHint, major)
	}
	if _, err := os.Stat(filepath.Join("/usr/share/postgresql", major, "extension", "pgautofailover.control")); err != nil {
		return nil, fmt.Errorf("pg_auto_failover's extension for PostgreSQL %s is not installed: run "+InstallHint, major, major)
	}
	o, err := pgtemp.ServerOwner()
	if err != nil {
		return nil, err
	}
	c := &Cluster{autoctl: autoctl, pgBin: pgBin, owner: o}
	if err := c.makeDir(); err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// makeDir cleans up after interrupted runs and makes this cluster's
// directory, locked, under the root lock so that no other run's cleanup
// can take it for a leftover.
func (c *Cluster) makeDir() error {
	root := tempRoot()
	rootLock, err := lockRoot(root)
	if err != nil {
		return err
	}
	defer rootLock.Close()
	if err := cleanLeftovers(root); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(root, dirPrefix)
	if err != nil {
		return fmt.Errorf("make cluster directory: %w", err)
	}
	c.dir = dir
	if c.lock, err = lockDir(dir); err != nil {
		os.RemoveAll(dir)
		return err
	}
	for _, sub := range []string{"config", "share", "run"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return fmt.Errorf("make cluster directory: %w", err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("make cluster directory: %w", err)
	}
	if err := c.owner.Own(dir); err != nil {
		return fmt.Errorf("hand cluster directory to its user: %w", err)
	}
	return nil
}

// tempRoot is /dev/shm when there is one, so that the nodes' WAL and
// fsyncs cost memory rather than a virtual machine's disk.
func tempRoot() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() && fi.Mode()&0o002 != 0 {
		return "/dev/shm"
	}
	return os.TempDir()
}

func (c *Cluster) start(ctx context.Context) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	c.monitorPort = ports[0]
	c.monitor, err = c.startProcess(filepath.Join(c.dir, "monitor.log"), nil, "create", "monitor",
		"--pgdata", filepath.Join(c.dir, "monitor"), "--pgport", strconv.Itoa(c.monitorPort),
		"--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--auth", "trust", "--no-ssl", "--run")
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, "the monitor to accept connections", func(ctx context.Context) (bool, error) {
		_, err := c.States(ctx)
		return err == nil, nil
	}); err != nil {
		return err
	}
	for i, port := range ports[1:] {
		n := &Node{Name: "node" + strconv.Itoa(i+1), Port: port, c: c}
		c.nodes = append(c.nodes, n)
		n.proc, err = c.startProcess(n.logFile(), n.env(), "create", "postgres",
			"--pgdata", n.dataDir(), "--pgport", strconv.Itoa(port), "--name", n.Name,
			"--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--auth", "trust", "--no-ssl",
			"--pgctl", filepath.Join(c.pgBin, "pg_ctl"), "--monitor", c.monitorURL(), "--run")
		if err != nil {
			return err
		}
		// The first node must be the formation's primary (state single)
		// before the second registers, or they race for the role.
		want := "single"
		if i > 0 {
			want = "secondary"
		}
		if err := c.waitFor(ctx, n.Name+" to reach state "+want, func(ctx context.Context) (bool, error) {
			states, err := c.States(ctx)
			if err != nil {
				return false, nil
			}
			s, ok := states[n.Name]
			return ok && s.Reported == want && s.Goal == want, nil
		}); err != nil {
			return fmt.Errorf("%w\n%s", err, tail(readFile(n.logFile()), 20))
		}
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return err
	}
	return nil
}

func (c *Cluster) monitorURL() string {
	return fmt.Sprintf("postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable", c.monitorPort)
}

// Dir is the cluster's directory: data directories, logs, pg_autoctl state.
func (c *Cluster) Dir() string { return c.dir }

// Nodes are the cluster's PostgreSQL nodes.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns the node called name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (n *Node) env() []string   { return []string{nodeVar + "=" + n.c.dir + "/" + n.Name} }
func (n *Node) dataDir() string { return filepath.Join(n.c.dir, n.Name) }
func (n *Node) logFile() string { return filepath.Join(n.c.dir, n.Name+".log") }

// URL connects to this node alone, as the postgres superuser (trusted on
// loopback), to database.
func (n *Node) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", n.Port, url.PathEscape(database))
}

// PrimaryURL lists every node with target_session_attrs=read-write, as
// `pg_autoctl show uri` prints it: whichever node is primary takes the
// connection.
func (c *Cluster) PrimaryURL(database string) string { return c.multiHostURL(database, "read-write") }

// ReadURL lists every node with the given target_session_attrs, such as
// standby or prefer-standby.
func (c *Cluster) ReadURL(database, targetSessionAttrs string) string {
	return c.multiHostURL(database, targetSessionAttrs)
}

func (c *Cluster) multiHostURL(database, attrs string) string {
	hosts := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		hosts[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port))
	}
	q := url.Values{"sslmode": {"disable"}, "target_session_attrs": {attrs}}
	return "postgres://postgres@" + strings.Join(hosts, ",") + "/" + url.PathEscape(database) + "?" + q.Encode()
}

// A State is a node's state as the monitor records it.
type State struct {
	Reported, Goal string // pg_auto_failover FSM states: primary, secondary, draining, ...
}

// States asks the monitor for each node's state, by node name.
func (c *Cluster) States(ctx context.Context) (map[string]State, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.monitorURL())
	if err != nil {
		return nil, fmt.Errorf("connect to the monitor: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, "SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node")
	if err != nil {
		return nil, fmt.Errorf("read node states from the monitor: %w", err)
	}
	states := map[string]State{}
	for rows.Next() {
		var name string
		var s State
		if err := rows.Scan(&name, &s.Reported, &s.Goal); err != nil {
			return nil, fmt.Errorf("read node states from the monitor: %w", err)
		}
		states[name] = s
	}
	return states, rows.Err()
}

// Primary returns the node the monitor holds for primary (reported and goal
// state primary, or wait_primary or single while it has no secondary), or
// an error when none is, as during a switchover.
func (c *Cluster) Primary(ctx context.Context) (*Node, error) {
	states, err := c.States(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range c.nodes {
		switch s := states[n.Name]; {
		case s.Reported != s.Goal:
		case s.Reported == "primary", s.Reported == "wait_primary", s.Reported == "single":
			return n, nil
		}
	}
	return nil, fmt.Errorf("no primary: %v", states)
}

// Standby returns a node other than the primary.
func (c *Cluster) Standby(ctx context.Context) (*Node, error) {
	p, err := c.Primary(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range c.nodes {
		if n != p {
			return n, nil
		}
	}
	return nil, errors.New("the cluster has no standby")
}

// WaitHealthy waits until one node is primary and every other one its
// secondary, each in the state the monitor assigned it.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	return c.waitFor(ctx, "a primary and a secondary", func(ctx context.Context) (bool, error) {
		states, err := c.States(ctx)
		if err != nil {
			return false, nil
		}
		primaries := 0
		for _, n := range c.nodes {
			s := states[n.Name]
			switch {
			case s.Reported != s.Goal:
				return false, nil
			case s.Reported == "primary":
				primaries++
			case s.Reported != "secondary":
				return false, nil
			}
		}
		return primaries == 1, nil
	})
}

// waitFor polls cond every 50ms until it holds, fails, or ctx ends (after a
// minute and a half without a deadline of its own).
func (c *Cluster) waitFor(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last map[string]State
	for {
		ok, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			last, _ = c.States(context.WithoutCancel(ctx))
			return fmt.Errorf("waiting for %s: %w (node states: %v)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Close stops every keeper and the monitor with `pg_autoctl stop --fast`,
// kills whatever is left, and removes the cluster's directory. It is safe to
// call more than once.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Cluster) close() error {
	var errs []error
	for _, n := range c.nodes {
		n.mu.Lock()
		if n.proc != nil {
			if _, err := c.run(30*time.Second, "stop", "--pgdata", n.dataDir(), "--fast"); err != nil {
				errs = append(errs, err)
			}
			if err := n.proc.wait(20 * time.Second); err != nil {
				errs = append(errs, err)
			}
			n.proc = nil
		}
		n.mu.Unlock()
	}
	if c.monitor != nil {
		if _, err := c.run(30*time.Second, "stop", "--pgdata", filepath.Join(c.dir, "monitor"), "--fast"); err != nil {
			errs = append(errs, err)
		}
		if err := c.monitor.wait(20 * time.Second); err != nil {
			errs = append(errs, err)
		}
		c.monitor = nil
	}
	if c.dir != "" {
		if err := killMarked(c.dir); err != nil {
			errs = append(errs, err)
		} else if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove cluster directory: %w", err))
		}
	}
	if c.lock != nil {
		c.lock.Close()
	}
	return errors.Join(errs...)
}

// freePorts asks the kernel for n distinct free ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
