package reliability_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"
)

// A call is one query of a load run.
type call struct {
	start, end time.Time
	timeout    time.Duration
	err        error
}

// overrun is how long the call ran past its deadline.
func (c call) overrun() time.Duration { return max(0, c.end.Sub(c.start)-c.timeout) }

// load runs worker goroutines that each run a query in a loop, each with its
// own deadline, recording every call, until finish.
type load struct {
	timeout time.Duration
	stop    chan struct{}
	wg      sync.WaitGroup

	mu     sync.Mutex
	calls  []call
	panics []string
}

func startLoad(workers int, timeout time.Duration, query func(context.Context) error) *load {
	l := &load{timeout: timeout, stop: make(chan struct{})}
	for range workers {
		l.wg.Add(1)
		go l.work(query)
	}
	return l
}

func (l *load) work(query func(context.Context) error) {
	defer l.wg.Done()
	defer func() {
		if p := recover(); p != nil {
			l.mu.Lock()
			l.panics = append(l.panics, fmt.Sprint(p))
			l.mu.Unlock()
		}
	}()
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		c := call{start: time.Now(), timeout: l.timeout}
		c.err = query(ctx)
		c.end = time.Now()
		cancel()
		l.mu.Lock()
		l.calls = append(l.calls, c)
		l.mu.Unlock()
		if c.err != nil {
			// A client retrying in a hot loop would starve the server it
			// waits for: these machines have two cores.
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// snapshot returns the calls so far.
func (l *load) snapshot() []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// finish stops the workers and returns every call.
func (l *load) finish() []call {
	close(l.stop)
	l.wg.Wait()
	return l.snapshot()
}

// succeededAfter counts the calls that started at or after t and succeeded.
func succeededAfter(calls []call, t time.Time) int {
	n := 0
	for _, c := range calls {
		if !c.start.Before(t) && c.err == nil {
			n++
		}
	}
	return n
}

// outcome summarises a load run around an outage that ended at up.
type outcome struct {
	calls, failed int
	recovery      time.Duration // from up to the end of the first success started after it
	maxOverrun    time.Duration
	failedLater   []call // failures among calls started after the first success after up
}

func summarise(calls []call, up time.Time) outcome {
	var o outcome
	o.calls = len(calls)
	firstOK := time.Time{}
	for _, c := range calls {
		o.maxOverrun = max(o.maxOverrun, c.overrun())
		if c.err != nil {
			o.failed++
		}
		if c.err == nil && !c.start.Before(up) && (firstOK.IsZero() || c.end.Before(firstOK)) {
			firstOK = c.end
		}
	}
	o.recovery = firstOK.Sub(up)
	for _, c := range calls {
		if c.err != nil && !firstOK.IsZero() && c.start.After(firstOK) {
			o.failedLater = append(o.failedLater, c)
		}
	}
	return o
}

// assertNoSecret fails if any text contains secret.
func assertNoSecret(t *testing.T, secret, what string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, secret) {
			t.Errorf("%s carries the password: %s", what, s)
			return
		}
	}
}

// logTexts renders every log entry, fields included.
func logTexts(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		out = append(out, fmt.Sprint(e.Message, e.ContextMap()))
	}
	return out
}

// errTexts renders the calls' errors.
func errTexts(calls []call) []string {
	var out []string
	for _, c := range calls {
		if c.err != nil {
			out = append(out, c.err.Error())
		}
	}
	return out
}
