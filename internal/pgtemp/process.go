package pgtemp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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
	if err := mark(s.dir, childMark, cmd.Process.Pid); err != nil {
		s.kill()
		return err
	}
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
