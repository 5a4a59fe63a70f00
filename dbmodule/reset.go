package dbmodule

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// The reset policy: what a lost connection costs the rest of the pool.
//
// A connection lost on its own (pg_terminate_backend, an idle-session
// timeout, a TCP reset from a load balancer) costs only that connection.
// As the same errors (57P01, a closed socket) also come from a server that
// shut down or crashed, the loss makes the server suspect: each other
// connection to it is pinged once before its next use, so the dead ones are
// dropped without failing a caller and the live ones are kept.
//
// A signal that the whole server is gone or unusable drops every connection
// to it, once: 57P02 (crash shutdown: every backend was killed), and for a
// pool that must write a server that turned read-only, seen as 25006 on a
// write from a connection whose server reports it, or as that report on a
// connection about to be handed out. With target_session_attrs=read-write,
// the report is in_hot_standby or default_transaction_read_only on; with
// primary, in_hot_standby (PostgreSQL 14+ reports both). 57P03 (cannot connect now) only ever answers a new
// connection, which ride-through retries (see retry.go); the server's
// existing connections are ended with 57P01 as it shuts down.
//
// Servers are told apart by the address a connection reached, so that with
// a URL listing several hosts a demoted primary costs only its own
// connections.

// servers tracks, per server a pool reaches, the events that invalidate its
// connections.
type servers struct {
	// readOnly, set for a pool that must write, tells from a connection's
	// parameter status that its server accepts no writes: it was demoted.
	readOnly func(*pgconn.PgConn) bool

	mu sync.Mutex
	m  map[string]*server

	log *zap.Logger
}

// server is one address's state. Connections remember the epoch and
// suspicion they last knew; a newer epoch drops them, a newer suspicion
// pings them.
type server struct {
	addr    string
	epoch   atomic.Uint64
	suspect atomic.Uint64
}

// connServer is what a connection knows of its server, kept in its
// inFlight (one lookup in CustomData serves the statement timing too).
type connServer struct {
	srv      *server
	epoch    uint64
	verified uint64
}

// newServers makes the state of a pool whose URL asks targetSessionAttrs.
func newServers(targetSessionAttrs string, log *zap.Logger) *servers {
	s := &servers{m: map[string]*server{}, log: log}
	switch targetSessionAttrs {
	case "read-write":
		s.readOnly = func(pc *pgconn.PgConn) bool {
			return pc.ParameterStatus("in_hot_standby") == "on" || pc.ParameterStatus("default_transaction_read_only") == "on"
		}
	case "primary":
		// default_transaction_read_only may be the app's own choice here.
		s.readOnly = func(pc *pgconn.PgConn) bool { return pc.ParameterStatus("in_hot_standby") == "on" }
	}
	return s
}

// track notes which server a new connection reached.
func (s *servers) track(conn *pgx.Conn) {
	addr := "unknown"
	if nc := conn.PgConn().Conn(); nc != nil && nc.RemoteAddr() != nil {
		addr = nc.RemoteAddr().String()
	}
	s.mu.Lock()
	srv, ok := s.m[addr]
	if !ok {
		srv = &server{addr: addr}
		s.m[addr] = srv
	}
	s.mu.Unlock()
	inFlightOn(conn).server = connServer{srv: srv, epoch: srv.epoch.Load(), verified: srv.suspect.Load()}
}

// install makes the pool drop connections of a server that went away and
// ping those of a suspect one, chaining whatever hooks pc already has.
func (s *servers) install(pc *pgxpool.Config) {
	nextPrepare := pc.PrepareConn
	pc.PrepareConn = func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		if !s.usable(conn) {
			return false, nil // pgxpool destroys it and tries another
		}
		if nextPrepare != nil {
			return nextPrepare(ctx, conn)
		}
		return true, nil
	}
	nextPing := pc.ShouldPing
	pc.ShouldPing = func(ctx context.Context, p pgxpool.ShouldPingParams) bool {
		if s.mustVerify(p.Conn) {
			return true
		}
		if nextPing != nil {
			return nextPing(ctx, p)
		}
		return p.IdleDuration > time.Second // pgxpool's default
	}
}

// usable reports whether conn may be handed out: its server has not gone
// away since it connected, nor turned read-only under a pool that writes.
func (s *servers) usable(conn *pgx.Conn) bool {
	cs := inFlightOn(conn).server
	if cs.srv == nil {
		return true
	}
	if cs.srv.epoch.Load() != cs.epoch {
		return false
	}
	if s.readOnly != nil && s.readOnly(conn.PgConn()) {
		s.drop(cs, "the server turned read-only (demoted)")
		return false
	}
	return true
}

// serverStillUsable reports whether conn's server has not been dropped since
// conn connected.
func serverStillUsable(conn *pgx.Conn) bool {
	cs := inFlightOn(conn).server
	return cs.srv == nil || cs.srv.epoch.Load() == cs.epoch
}

// mustVerify reports whether conn is to be pinged before use, as a
// connection to its server was lost since it was last verified; it counts
// as verified from now, since a failed ping drops it.
func (s *servers) mustVerify(conn *pgx.Conn) bool {
	f := inFlightOn(conn)
	if f.server.srv == nil {
		return false
	}
	if n := f.server.srv.suspect.Load(); n != f.server.verified {
		f.server.verified = n
		return true
	}
	return false
}

// lost applies the policy to a statement that failed with err on conn.
func (s *servers) lost(conn *pgx.Conn, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return // pgx closes a connection whose query was interrupted; the server is fine
	}
	cs := inFlightOn(conn).server
	if cs.srv == nil {
		return
	}
	var pgErr *pgconn.PgError
	fromServer := errors.As(err, &pgErr)
	switch {
	case fromServer && pgErr.Code == "57P02":
		s.drop(cs, "the server crashed (57P02)")
	case fromServer && pgErr.Code == "25006":
		// Also what a write in the app's own read-only transaction gets;
		// only the server's own report tells a demotion apart.
		if s.readOnly != nil && s.readOnly(conn.PgConn()) {
			s.drop(cs, "the server turned read-only (demoted)")
		}
	case fromServer && pgErr.Code == "57P01", !fromServer && conn.IsClosed():
		// This connection alone, or the whole server: the next use of each
		// other connection to it tells, by a ping. Connections that fail
		// together raise one suspicion.
		cs.srv.suspect.CompareAndSwap(cs.verified, cs.verified+1)
	}
}

// drop makes every connection to cs's server that predates this event
// unusable, once per event: connections that learn of it later (their
// epoch already behind) change nothing.
func (s *servers) drop(cs connServer, why string) {
	if cs.srv.epoch.CompareAndSwap(cs.epoch, cs.epoch+1) && s.log != nil {
		s.log.Warn("dropping every connection to a database server", zap.String("server", cs.srv.addr), zap.String("reason", why))
	}
}
