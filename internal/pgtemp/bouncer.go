package pgtemp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BouncerOptions configure a PgBouncer. The zero value pools in transaction
// mode, the mode that breaks prepared statements and session state.
type BouncerOptions struct {
	// PoolMode is session, transaction (the default) or statement.
	PoolMode string
	// PoolSize is how many server connections PgBouncer opens per database
	// and user; default 20.
	PoolSize int
	// Settings are extra [pgbouncer] settings, overriding the above.
	Settings map[string]string
	// CPUs, if set, are the only CPUs PgBouncer runs on.
	CPUs []int
}

// A Bouncer is a PgBouncer in front of a Server, authenticating its
// superuser with the same password.
type Bouncer struct {
	dir    string
	port   int
	server *Server
	proc   *exec.Cmd
	exited chan struct{}
}

// StartBouncer starts a PgBouncer, found on PATH or installed with
// apt-get when running as root, that pools connections to srv.
func StartBouncer(ctx context.Context, srv *Server, opts BouncerOptions) (*Bouncer, error) {
	sweepLeftovers()
	bin, err := Program(ctx, "pgbouncer", "pgbouncer")
	if err != nil {
		return nil, err
	}
	dir, err := socketSafeTempDir()
	if err != nil {
		return nil, err
	}
	b := &Bouncer{dir: dir, server: srv}
	if err := b.start(ctx, bin, opts); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return b, nil
}

func (b *Bouncer) start(ctx context.Context, bin string, opts BouncerOptions) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	userlist := fmt.Sprintf("%q %q\n", "postgres", b.server.Password())
	if err := os.WriteFile(filepath.Join(b.dir, "userlist.txt"), []byte(userlist), 0o600); err != nil {
		return fmt.Errorf("write pgbouncer userlist: %w", err)
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		b.port = port
		if err := b.writeConfig(opts); err != nil {
			return err
		}
		err = b.launch(ctx, bin, opts.CPUs)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errPortBusy) || attempt == 5 {
			return err
		}
	}
}

func (b *Bouncer) writeConfig(opts BouncerOptions) error {
	settings := map[string]string{
		"listen_addr":       "127.0.0.1",
		"listen_port":       strconv.Itoa(b.port),
		"unix_socket_dir":   b.dir,
		"auth_type":         "scram-sha-256",
		"auth_file":         filepath.Join(b.dir, "userlist.txt"),
		"admin_users":       "postgres",
		"pool_mode":         cmp.Or(opts.PoolMode, "transaction"),
		"default_pool_size": strconv.Itoa(cmp.Or(opts.PoolSize, 20)),
		"max_client_conn":   "2000",
		"logfile":           filepath.Join(b.dir, "pgbouncer.log"),
	}
	maps.Copy(settings, opts.Settings)
	var ini strings.Builder
	fmt.Fprintf(&ini, "[databases]\n* = host=127.0.0.1 port=%d\n\n[pgbouncer]\n", b.server.Port())
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		fmt.Fprintf(&ini, "%s = %s\n", k, settings[k])
	}
	if err := os.WriteFile(filepath.Join(b.dir, "pgbouncer.ini"), []byte(ini.String()), 0o600); err != nil {
		return fmt.Errorf("write pgbouncer.ini: %w", err)
	}
	if err := b.server.owner.own(b.dir); err != nil {
		return fmt.Errorf("hand pgbouncer directory to its user: %w", err)
	}
	return nil
}

func (b *Bouncer) launch(ctx context.Context, bin string, cpus []int) error {
	// PgBouncer refuses to run as root, like PostgreSQL.
	cmd := b.server.owner.command(context.Background(), bin, filepath.Join(b.dir, "pgbouncer.ini"))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pgbouncer: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // exit status is read from the log
		close(exited)
	}()
	b.proc, b.exited = cmd, exited
	if err := mark(b.dir, childMark, cmd.Process.Pid); err != nil {
		b.stop()
		return err
	}
	if err := pin(cmd.Process.Pid, cpus); err != nil {
		b.stop()
		return err
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port))
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(b.dir, "pgbouncer.log"))
			if strings.Contains(string(log), "Address already in use") {
				return fmt.Errorf("pgbouncer on port %d: %w", b.port, errPortBusy)
			}
			return fmt.Errorf("pgbouncer exited during start:\n%s", tail(log, 20))
		case <-ctx.Done():
			b.stop()
			return fmt.Errorf("pgbouncer not listening: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Port is PgBouncer's TCP port on 127.0.0.1.
func (b *Bouncer) Port() int { return b.port }

// URL is a TCP connection URL for database through PgBouncer, as the
// server's superuser.
func (b *Bouncer) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", b.server.Password()),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Close stops PgBouncer and removes its directory.
func (b *Bouncer) Close() error {
	b.stop()
	if err := os.RemoveAll(b.dir); err != nil {
		return fmt.Errorf("remove pgbouncer directory: %w", err)
	}
	return nil
}

// stop asks PgBouncer to exit (SIGINT: at once, dropping clients), killing
// it if it has not after ten seconds.
func (b *Bouncer) stop() {
	select {
	case <-b.exited:
		return
	default:
	}
	b.proc.Process.Signal(syscall.SIGINT) //nolint:errcheck // it may have exited
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		b.proc.Process.Kill() //nolint:errcheck // it may have exited
		<-b.exited
	}
}
