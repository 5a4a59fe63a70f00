package pgtemp

import (
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
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options configure a server. The zero value is a fast server on a free port.
type Options struct {
	// Settings are server settings (-c name=value) that override the
	// defaults, which favour speed over durability: fsync=off and friends.
	Settings map[string]string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Configure, if set, runs once on the new data directory before the
	// server first starts, e.g. to write TLS certificate files. Files it
	// writes are handed to the server's user afterwards.
	Configure func(dataDir string) error
	// CPUs, if set, are the only CPUs the server's processes run on, as
	// benchmarks want client and server apart. Backends inherit it from the
	// postmaster, which gets it as soon as it starts.
	CPUs []int
}

// defaultSettings favour speed over durability: a throwaway server never
// needs to survive a power cut.
func defaultSettings() map[string]string {
	return map[string]string{
		"fsync":              "off",
		"synchronous_commit": "off",
		"full_page_writes":   "off",
		"max_connections":    "200",
		"listen_addresses":   "127.0.0.1",
	}
}

// A Server is a running (or stopped) throwaway PostgreSQL server.
type Server struct {
	binDir   string
	dir      string // removed by Close; holds data/, the socket and server.log
	owner    owner
	password string
	settings map[string]string
	fixed    bool // the caller chose the port, so a busy port is an error
	cpus     []int

	mu     sync.Mutex
	port   int
	proc   *exec.Cmd
	exited chan struct{} // closed when proc has exited
}

// Start makes a new cluster in a temporary directory and starts a server on
// it. Close stops the server and removes the directory.
func Start(ctx context.Context, opts Options) (*Server, error) {
	binDir, err := BinDir(ctx)
	if err != nil {
		return nil, err
	}
	o, err := serverOwner()
	if err != nil {
		return nil, err
	}
	tmpl, err := templateCluster(ctx, binDir, o)
	if err != nil {
		return nil, err
	}
	dir, err := socketSafeTempDir()
	if err != nil {
		return nil, err
	}
	s := &Server{
		binDir: binDir, dir: dir, owner: o, password: tmpl.password,
		settings: defaultSettings(), port: opts.Port, fixed: opts.Port != 0, cpus: opts.CPUs,
	}
	maps.Copy(s.settings, opts.Settings)
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := copyTree(ctx, tmpl.dataDir, s.DataDir()); err != nil {
		return fail(err)
	}
	if opts.Configure != nil {
		if err := opts.Configure(s.DataDir()); err != nil {
			return fail(fmt.Errorf("configure data directory: %w", err))
		}
	}
	if err := o.own(dir); err != nil {
		return fail(fmt.Errorf("hand server directory to its user: %w", err))
	}
	if err := s.Start(ctx); err != nil {
		return fail(err)
	}
	return s, nil
}

// tempRoot is where servers and the cached cluster live: /dev/shm when it is
// there, as a cluster copies into memory several times faster than onto a
// virtual machine's disk, else the temp directory.
func tempRoot() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() && fi.Mode()&0o002 != 0 {
		return "/dev/shm"
	}
	if dir := os.TempDir(); len(dir) <= 60 {
		return dir
	}
	return "/tmp" // a unix socket path must fit in about 100 bytes
}

// socketSafeTempDir makes a directory whose socket path fits the ~100 bytes
// a unix socket address allows, and that the server's user can enter.
func socketSafeTempDir() (string, error) {
	dir, err := os.MkdirTemp(tempRoot(), "pgtemp-")
	if err != nil {
		return "", fmt.Errorf("make server directory: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("make server directory: %w", err)
	}
	return dir, nil
}

// Dir is the server's directory, which holds its unix socket.
func (s *Server) Dir() string { return s.dir }

// DataDir is the server's data directory.
func (s *Server) DataDir() string { return filepath.Join(s.dir, "data") }

// LogFile is where the server writes its log.
func (s *Server) LogFile() string { return filepath.Join(s.dir, "server.log") }

// BinDir is the directory of the server binaries.
func (s *Server) BinDir() string { return s.binDir }

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// Password is the postgres superuser's password over TCP.
func (s *Server) Password() string { return s.password }

// URL is a TCP connection URL for database as the superuser.
func (s *Server) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", s.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port())),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// SocketURL is a unix-socket connection URL for database as the superuser.
func (s *Server) SocketURL(database string) string {
	q := url.Values{"host": {s.dir}, "port": {strconv.Itoa(s.Port())}}
	return (&url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/" + database, RawQuery: q.Encode()}).String()
}

// Start starts the server if it is not running, and waits until it accepts
// connections. After Stop or Kill it restarts on the same port and data.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running() {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	for attempt := 1; ; attempt++ {
		if s.port == 0 || (!s.fixed && attempt > 1) {
			port, err := freePort()
			if err != nil {
				return err
			}
			s.port = port
		}
		err := s.launch(ctx)
		if err == nil {
			return nil
		}
		// Another process may take a free port between our check and the
		// server's bind: pick another.
		if !errors.Is(err, errPortBusy) || s.fixed || attempt == 5 {
			return err
		}
	}
}

var errPortBusy = errors.New("port in use")

func (s *Server) launch(ctx context.Context) error {
	log, err := os.OpenFile(s.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	defer log.Close() // the child has its own copy
	offset, _ := log.Seek(0, 2)

	args := []string{"-D", s.DataDir(), "-p", strconv.Itoa(s.port), "-k", s.dir}
	for _, k := range slices.Sorted(maps.Keys(s.settings)) {
		args = append(args, "-c", k+"="+s.settings[k])
	}
	// The server outlives ctx, which only bounds the start.
	cmd := s.owner.command(context.Background(), filepath.Join(s.binDir, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // exit status is read from the log
		close(exited)
	}()
	s.proc, s.exited = cmd, exited
	if err := pin(cmd.Process.Pid, s.cpus); err != nil {
		s.kill()
		return err
	}

	if err := s.waitReady(ctx, cmd.Process.Pid, exited); err != nil {
		s.kill()
		out := s.logSince(offset)
		if strings.Contains(out, "could not bind") || strings.Contains(out, "already in use") {
			return fmt.Errorf("postgres on port %d: %w", s.port, errPortBusy)
		}
		return fmt.Errorf("postgres on port %d: %w\n%s", s.port, err, out)
	}
	return nil
}

// waitReady polls postmaster.pid until the server with this pid reports
// "ready", its process exits, or ctx ends.
func (s *Server) waitReady(ctx context.Context, pid int, exited <-chan struct{}) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(filepath.Join(s.DataDir(), "postmaster.pid")); err == nil {
			lines := strings.Split(string(b), "\n")
			if len(lines) > 7 && strings.TrimSpace(lines[0]) == strconv.Itoa(pid) && strings.TrimSpace(lines[7]) == "ready" {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("server exited during start")
		case <-ctx.Done():
			return fmt.Errorf("server not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func (s *Server) logSince(offset int64) string {
	b, err := os.ReadFile(s.LogFile())
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return tail(b[offset:], 20)
}

func (s *Server) running() bool {
	if s.exited == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Stop shuts the server down the fast way (SIGINT: active sessions are
// disconnected) and waits for it to exit. If ctx ends first, it kills it.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running() {
		return nil
	}
	if err := s.proc.Process.Signal(syscall.SIGINT); err != nil {
		return fmt.Errorf("signal postgres: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-ctx.Done():
		s.kill()
		return fmt.Errorf("postgres did not stop in time, killed it: %w", ctx.Err())
	}
}

// Kill kills the server and all its backends with SIGKILL, as a crash would,
// and waits for the postmaster to exit. Start recovers it.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

func (s *Server) kill() {
	if !s.running() {
		return
	}
	pgid := s.proc.Process.Pid
	syscall.Kill(-pgid, syscall.SIGKILL) //nolint:errcheck // it may have exited already
	<-s.exited
	// The backends die a moment after the postmaster; until they have, their
	// shared memory blocks a new postmaster on this data directory.
	deadline := time.Now().Add(10 * time.Second)
	for groupAlive(pgid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// groupAlive reports whether a live (not zombie) process is in the process
// group pgid, by reading /proc; without /proc it reports false.
func groupAlive(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces, so cut at ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// Restart stops the server the fast way and starts it again on the same port.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(ctx); err != nil {
		return err
	}
	return s.Start(ctx)
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.Stop(ctx)
	if rerr := os.RemoveAll(s.dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("remove server directory: %w", rerr))
	}
	return err
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pin restricts process pid to cpus; no cpus, no change.
func pin(pid int, cpus []int) error {
	if len(cpus) == 0 {
		return nil
	}
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(pid, &set); err != nil {
		return fmt.Errorf("pin process %d to CPUs %v: %w", pid, cpus, err)
	}
	return nil
}
