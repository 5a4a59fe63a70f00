package dbmodule

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Leak detection, as HikariCP's leakDetectionThreshold: a connection out of
// the pool for longer than DB_LEAK_THRESHOLD (a Rows never closed, a Tx
// never committed or rolled back, an Acquire never released, or simply a
// statement or transaction that runs that long) is logged at warn once, with
// how long it has been held and the stack of the code that acquired it. When
// it comes back, that is logged at info.
//
// Each acquire records its time and the caller's program counters (no
// symbols: those are resolved only for a report) in state kept on the
// connection. One goroutine scans the held connections a few times per
// threshold; it runs only while some connection is held, and ends by itself
// once none has been for scanIdle, so a closed pool leaves none behind. A
// connection taken out of the pool for good (Conn.Hijack) counts as held,
// and is reported, for as long as the detector lives.

// leakStackDepth is how many frames an acquire records: the pool's own and
// a caller's two dozen.
const leakStackDepth = 32

type leakDetector struct {
	threshold time.Duration
	period    time.Duration
	log       *zap.Logger

	leaks   atomic.Int64 // connections reported
	held    atomic.Int64 // connections acquired and not yet released
	running atomic.Bool  // a scanner runs

	mu    sync.Mutex
	conns map[*heldConn]struct{} // every connection the pool has handed out and not closed
}

// heldConn is what the detector knows of one connection, kept in its
// pgconn.PgConn.CustomData so that an acquire looks it up without a lock.
type heldConn struct {
	pid uint32

	mu       sync.Mutex // between its holder and the scanner
	since    time.Time  // zero while the connection is in the pool
	reported bool
	n        int
	pcs      [leakStackDepth]uintptr
}

const heldConnKey = "dbmodule.leakDetector"

var (
	_ pgxpool.AcquireTracer = (*leakDetector)(nil)
	_ pgxpool.ReleaseTracer = (*leakDetector)(nil)
)

func newLeakDetector(threshold time.Duration, log *zap.Logger) *leakDetector {
	// A quarter of the threshold between scans reports a leak within 1.25
	// thresholds; scanning more than once a second is never needed.
	period := min(max(threshold/4, 10*time.Millisecond), time.Second)
	return &leakDetector{threshold: threshold, period: period, log: log, conns: map[*heldConn]struct{}{}}
}

// TraceAcquireStart implements pgxpool.AcquireTracer.
func (d *leakDetector) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return ctx
}

// TraceAcquireEnd implements pgxpool.AcquireTracer: it notes when and from
// where the connection was acquired.
func (d *leakDetector) TraceAcquireEnd(_ context.Context, _ *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	if data.Err != nil || data.Conn == nil {
		return
	}
	h := d.heldOn(data.Conn)
	h.mu.Lock()
	h.since = time.Now()
	h.reported = false
	h.n = runtime.Callers(2, h.pcs[:])
	h.mu.Unlock()
	d.held.Add(1)
	if !d.running.Load() && d.running.CompareAndSwap(false, true) {
		go d.scan()
	}
}

// TraceRelease implements pgxpool.ReleaseTracer.
func (d *leakDetector) TraceRelease(_ *pgxpool.Pool, data pgxpool.TraceReleaseData) {
	h, ok := data.Conn.PgConn().CustomData()[heldConnKey].(*heldConn)
	if !ok {
		return // handed out by AcquireAllIdle, which is not traced
	}
	h.mu.Lock()
	since, reported := h.since, h.reported
	h.since, h.reported = time.Time{}, false
	h.mu.Unlock()
	if since.IsZero() {
		return
	}
	d.held.Add(-1)
	if reported {
		d.log.Info("database connection reported as leaked came back to the pool",
			zap.Duration("held", time.Since(since)), zap.Uint32("pid", h.pid))
	}
}

// heldOn returns conn's state, registering the connection on first use.
func (d *leakDetector) heldOn(conn *pgx.Conn) *heldConn {
	data := conn.PgConn().CustomData()
	if h, ok := data[heldConnKey].(*heldConn); ok {
		return h
	}
	h := &heldConn{pid: conn.PgConn().PID()}
	data[heldConnKey] = h
	d.mu.Lock()
	d.conns[h] = struct{}{}
	d.mu.Unlock()
	return h
}

// forget drops conn, which the pool is closing. It runs as BeforeClose.
func (d *leakDetector) forget(conn *pgx.Conn) {
	h, ok := conn.PgConn().CustomData()[heldConnKey].(*heldConn)
	if !ok {
		return
	}
	d.mu.Lock()
	delete(d.conns, h)
	d.mu.Unlock()
	h.mu.Lock()
	held := !h.since.IsZero()
	h.since = time.Time{}
	h.mu.Unlock()
	if held {
		d.held.Add(-1) // hijacked, or closed by the pool while held
	}
}

// leak is one report, copied out of a heldConn under its lock.
type leak struct {
	pid  uint32
	held time.Duration
	n    int
	pcs  [leakStackDepth]uintptr
}

// scanIdle is how long the scanner outlives the last held connection: long
// enough that steady traffic does not restart it, short enough that a
// closed pool's scanner is gone at once.
const scanIdle = 100 * time.Millisecond

// scan reports connections held past the threshold, every period, until
// none has been held for scanIdle.
func (d *leakDetector) scan() {
	tick := min(d.period, scanIdle/2)
	t := time.NewTicker(tick)
	defer t.Stop()
	var lastScan, idleSince time.Time
	for now := range t.C {
		if now.Sub(lastScan) >= d.period-tick/2 {
			lastScan = now
			d.scanOnce(now)
		}
		if d.held.Load() > 0 {
			idleSince = time.Time{}
			continue
		}
		if idleSince.IsZero() {
			idleSince = now
		}
		if now.Sub(idleSince) < scanIdle {
			continue
		}
		d.running.Store(false)
		// An acquire between the check and the store saw a scanner running
		// and started none: carry on for it.
		if d.held.Load() == 0 || !d.running.CompareAndSwap(false, true) {
			return
		}
		idleSince = time.Time{}
	}
}

// scanOnce reports the connections held past the threshold at now.
func (d *leakDetector) scanOnce(now time.Time) {
	var found []leak
	d.mu.Lock()
	for h := range d.conns {
		h.mu.Lock()
		if !h.since.IsZero() && !h.reported && now.Sub(h.since) >= d.threshold {
			h.reported = true
			found = append(found, leak{pid: h.pid, held: now.Sub(h.since), n: h.n, pcs: h.pcs})
		}
		h.mu.Unlock()
	}
	d.mu.Unlock()
	for i := range found {
		d.report(&found[i])
	}
}

func (d *leakDetector) report(l *leak) {
	d.leaks.Add(1)
	caller, stack := callerStack(l.pcs[:l.n])
	d.log.Warn("database connection held longer than DB_LEAK_THRESHOLD: a Rows not closed, a Tx not ended or an Acquire not released?",
		zap.Duration("held", l.held), zap.Duration("threshold", d.threshold), zap.Uint32("pid", l.pid),
		zap.String("acquired_by", caller), zap.String("stack", stack))
}

// callerStack renders pcs as a stack, starting at the first frame outside
// pgx, puddle and this package: the code that acquired the connection, even
// through Querier, InTx or a wrapper of this package. It also returns that
// frame, as "function file:line".
func callerStack(pcs []uintptr) (caller, stack string) {
	frames := runtime.CallersFrames(pcs)
	var b strings.Builder
	inLibrary := true
	for {
		f, more := frames.Next()
		if inLibrary && libraryFrame(f.Function) && more {
			continue
		}
		if inLibrary {
			inLibrary = false
			caller = f.Function + " " + f.File + ":" + strconv.Itoa(f.Line)
		}
		b.WriteString(f.Function)
		b.WriteString("\n\t")
		b.WriteString(f.File)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(f.Line))
		b.WriteByte('\n')
		if !more {
			break
		}
	}
	return caller, b.String()
}

// libraryFrame reports whether function belongs to pgx, puddle, or this
// package (not its tests, whose package is dbmodule_test).
func libraryFrame(function string) bool {
	return strings.HasPrefix(function, "github.com/jackc/") ||
		strings.HasPrefix(function, "github.com/fxpg/fxpg/dbmodule.") ||
		strings.HasPrefix(function, "runtime.")
}
