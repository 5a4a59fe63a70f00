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
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a server. The zero value is a fast server on a free port.
type Options struct {
	// Settings are server settings (-c name=value) that override the
	// defaults, which favour speed over durability: fsync=off and friends.
	Settings map[string]string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// HBA are pg_hba.conf lines put before initdb's, which trust the unix
	// socket and ask for SCRAM passwords over TCP. The first line that
	// matches a connection decides, so these can relax or tighten the
	// defaults for some roles or databases, e.g.
	// "host all app 127.0.0.1/32 trust".
	HBA []string
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
	sweepLeftovers()
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
	if err := prependHBA(s.DataDir(), opts.HBA); err != nil {
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

// prependHBA puts lines at the top of dataDir's pg_hba.conf.
func prependHBA(dataDir string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	path := filepath.Join(dataDir, "pg_hba.conf")
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read pg_hba.conf: %w", err)
	}
	for _, l := range lines {
		if strings.ContainsAny(l, "\n\r") {
			return fmt.Errorf("pgtemp: Options.HBA line %q holds a line break", l)
		}
	}
	b := []byte(strings.Join(lines, "\n") + "\n")
	if err := os.WriteFile(path, append(b, old...), 0o600); err != nil {
		return fmt.Errorf("write pg_hba.conf: %w", err)
	}
	return nil
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
