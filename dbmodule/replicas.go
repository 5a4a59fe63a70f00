package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
)

// ReplicaCheckPeriod is how often each replica's state and lag are checked:
// a replica that falls behind DB_REPLICA_MAX_LAG, stops answering or is
// promoted leaves read rotation within one period, and comes back at the
// first check that finds it well.
const ReplicaCheckPeriod = time.Second

// Replicas is the ReadQuerier of an app with DATABASE_READ_URL: one pool per
// host the URL lists (each made like the primary's, with its own Tracer,
// reset policy and outage logs), and the routing between them.
//
// One pool per host, rather than pgx's multi-host connect, because a pool
// whose connections went wherever a connect landed could not take one
// lagging host out of rotation, nor know which replica a read ran on.
//
// A read goes, round robin, to a replica in rotation: one that answered its
// last check, is a standby (pg_is_in_recovery()), and lags by no more than
// DB_REPLICA_MAX_LAG (see lag.go). Under WithReadYourWrites it also must
// have replayed the request's writes. With no such replica the read goes to
// the primary; the change is logged when it happens, never per read. A
// read whose replica could not be reached (a connect failure, or a
// connection that died: a standby cannot have run a write) marks it out of
// rotation and goes to the primary at once.
type Replicas struct {
	primary  Querier
	replicas []*replica
	maxLag   time.Duration
	log      *zap.Logger
	next     atomic.Uint32 // round robin
	anyUp    atomic.Bool   // whether some replica was in rotation at the last change

	history lsnHistory // the check loop's
	cancel  context.CancelFunc
	done    chan struct{}
}

// replica is one host of the read URL.
type replica struct {
	index    int    // 1-based, in the URL's order: what /readyz names
	addr     string // host:port, for logs and metrics (never /readyz)
	pool     *pgxpool.Pool
	gate     *connGate
	log      *zap.Logger
	state    atomic.Pointer[replicaState]
	replayed atomic.Uint64 // the highest replay position seen, from checks and reads
}

// replicaState is what the last check, or a failed read, found.
type replicaState struct {
	unchecked  bool // before the first check, whose outcome start logs
	inRotation bool
	primary    bool   // out of rotation as the primary, which the URL may list: not a fault
	reason     string // why not, for logs and /readyz; never an address
	lag        time.Duration
}

func newReplicas(cfg config.DB, primary Querier, o options) (*Replicas, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	const name = "DATABASE_READ_URL"
	s, err := newSettings(cfg, name, cfg.ReadURL)
	if err != nil {
		return nil, err
	}
	pc, err := s.parse()
	if err != nil {
		return nil, err
	}
	r := &Replicas{
		primary: primary, maxLag: cfg.ReplicaMaxLag, log: o.logger.With(zap.String("role", string(RoleReplica))),
		history: lsnHistory{keep: cfg.ReplicaMaxLag + 2*ReplicaCheckPeriod},
	}
	closeMade := func() {
		for _, made := range r.replicas {
			made.gate.close()
			made.pool.Close() // nothing has used them yet
		}
	}
	for i, host := range replicaHosts(&pc.ConnConfig.Config) {
		hc := pc.Copy()
		hc.ConnConfig.Host, hc.ConnConfig.Port, hc.ConnConfig.TLSConfig = host.Host, host.Port, host.TLSConfig
		hc.ConnConfig.Fallbacks = host.fallbacks
		rep := &replica{index: i + 1, addr: net.JoinHostPort(host.Host, strconv.Itoa(int(host.Port)))}
		rep.log = r.log.With(zap.String("replica", rep.addr))
		rep.state.Store(&replicaState{reason: "not checked yet", unchecked: true})
		if _, rep.gate, err = instrument(hc, cfg, options{logger: rep.log, tracers: o.tracers, observers: o.observers, role: RoleReplica}); err != nil {
			closeMade()
			return nil, err
		}
		rep.gate.hold()
		if rep.pool, err = pgxpool.NewWithConfig(context.Background(), hc); err != nil {
			closeMade()
			return nil, fmt.Errorf("create replica pool for %s: %w", name, err)
		}
		r.replicas = append(r.replicas, rep)
	}
	return r, nil
}

// host is one host of a parsed URL, with the fallbacks that retry it (as
// sslmode=prefer retries without TLS).
type host struct {
	pgconn.FallbackConfig
	fallbacks []*pgconn.FallbackConfig
}

func replicaHosts(cc *pgconn.Config) []host {
	all := append([]*pgconn.FallbackConfig{{Host: cc.Host, Port: cc.Port, TLSConfig: cc.TLSConfig}}, cc.Fallbacks...)
	var hosts []host
	for _, f := range all {
		if n := len(hosts); n > 0 && hosts[n-1].Host == f.Host && hosts[n-1].Port == f.Port {
			hosts[n-1].fallbacks = append(hosts[n-1].fallbacks, f)
			continue
		}
		hosts = append(hosts, host{FallbackConfig: *f})
	}
	return hosts
}

// start lets the replicas' pools connect, checks them once (so that reads
// go to them from the start), and starts the checks. A replica that is
// down is logged and left out of rotation; the start goes on.
func (r *Replicas) start(ctx context.Context) error {
	for _, rep := range r.replicas {
		rep.gate.open()
	}
	r.check(ctx)
	in := 0
	for _, rep := range r.replicas {
		if rep.state.Load().inRotation {
			in++
		}
	}
	r.anyUp.Store(in > 0)
	fields := []zap.Field{zap.Int("replicas", len(r.replicas)), zap.Int("in_rotation", in),
		zap.Duration("max_lag", r.maxLag), zap.Duration("check_period", ReplicaCheckPeriod)}
	if in == 0 {
		r.log.Warn("read replicas opened, none in rotation: reads go to the primary", append(fields, zap.NamedError("reasons", r.Check(ctx)))...)
	} else {
		r.log.Info("read replicas opened", fields...)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel, r.done = cancel, make(chan struct{})
	go r.loop(loopCtx)
	return nil
}

// stop ends the checks and closes the pools, returning when ctx ends even
// if a caller holds a connection.
func (r *Replicas) stop(ctx context.Context) error {
	if r.cancel != nil {
		r.cancel()
		select {
		case <-r.done:
		case <-ctx.Done():
			return fmt.Errorf("stop replica checks: %w", ctx.Err())
		}
	}
	errs := make(chan error, len(r.replicas))
	for _, rep := range r.replicas {
		rep.gate.close()
		go func() { errs <- Close(ctx, rep.pool) }()
	}
	var all []error
	for range r.replicas {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

func (r *Replicas) loop(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(ReplicaCheckPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.check(ctx)
		}
	}
}

// check samples the primary's WAL position, then checks every replica at
// once, each within a period.
func (r *Replicas) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, ReplicaCheckPeriod)
	defer cancel()
	var text string
	if err := r.primary.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&text); err == nil {
		if pos, err := parseLSN(text); err == nil {
			r.history.add(time.Now(), pos)
		}
	}
	var wg sync.WaitGroup
	for _, rep := range r.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.setState(rep, r.checkOne(ctx, rep))
		}()
	}
	wg.Wait()
}

func (r *Replicas) checkOne(ctx context.Context, rep *replica) *replicaState {
	var standby bool
	var replay *string
	err := rep.pool.QueryRow(ctx, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text").Scan(&standby, &replay)
	switch {
	case errors.Is(err, pgconn.ErrPrimaryConnection):
		return &replicaState{primary: true, reason: "is a primary (target_session_attrs refused it)"}
	case err != nil:
		return &replicaState{reason: "not answering (" + failureReason(err) + ")"}
	case !standby || replay == nil:
		return &replicaState{primary: true, reason: "is a primary, not a standby"}
	}
	pos, err := parseLSN(*replay)
	if err != nil {
		return &replicaState{reason: err.Error()}
	}
	raise(&rep.replayed, uint64(pos))
	lag := r.history.lag(pos, time.Now())
	if lag > r.maxLag {
		return &replicaState{reason: fmt.Sprintf("lagging by %s or more (DB_REPLICA_MAX_LAG %s)", lag.Round(time.Millisecond), r.maxLag), lag: lag}
	}
	return &replicaState{inRotation: true, lag: lag}
}

// setState records a replica's state, logging a change of rotation, and
// the change of all reads to the primary and back.
func (r *Replicas) setState(rep *replica, s *replicaState) {
	old := rep.state.Swap(s)
	if old.inRotation == s.inRotation || old.unchecked {
		return
	}
	switch {
	case s.inRotation:
		rep.log.Info("replica back in read rotation", zap.Duration("lag", s.lag))
	case s.primary:
		rep.log.Info("replica left read rotation", zap.String("reason", s.reason)) // a switchover: no fault
	default:
		rep.log.Warn("replica left read rotation", zap.String("reason", s.reason))
	}
	r.noteRotation()
}

// markDown takes rep out of rotation after a read could not reach it; the
// next check that finds it well brings it back.
func (r *Replicas) markDown(rep *replica, err error) {
	old := rep.state.Load()
	if !old.inRotation {
		return
	}
	s := &replicaState{reason: "not answering (" + failureReason(err) + ")"}
	if rep.state.CompareAndSwap(old, s) {
		rep.log.Warn("replica left read rotation", zap.String("reason", s.reason))
		r.noteRotation()
	}
}

func (r *Replicas) noteRotation() {
	up := false
	for _, rep := range r.replicas {
		up = up || rep.state.Load().inRotation
	}
	if r.anyUp.Swap(up) == up {
		return
	}
	if up {
		r.log.Info("reads go to replicas again")
	} else {
		r.log.Warn("no replica in read rotation: reads go to the primary")
	}
}

// failureReason is Classify's safe reason for err.
func failureReason(err error) string {
	_, reason := Classify(err)
	return reason
}
