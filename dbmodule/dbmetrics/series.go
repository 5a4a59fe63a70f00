package dbmetrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// A series is the histogram series of one summary: one for its successes,
// made with it, and one per error type, made on the type's first error.
type series struct {
	vec     *prometheus.HistogramVec
	summary string
	ok      prometheus.Observer
	errs    table[prometheus.Observer] // by error type
	nErrs   bounded
}

func newSeries(vec *prometheus.HistogramVec, summary string) *series {
	return &series{vec: vec, summary: summary, ok: observer(vec, summary, "")}
}

// observer returns vec's observer of a summary and an error type.
func observer(vec *prometheus.HistogramVec, summary, errorType string) prometheus.Observer {
	o, err := vec.GetMetricWithLabelValues(summary, errorType)
	if err != nil {
		// Only for a label value that is not UTF-8, which none is: names
		// are ASCII identifiers, the rest constants and SQLSTATEs.
		return prometheus.ObserverFunc(func(float64) {})
	}
	return o
}

// observe records a statement that took seconds and ended with err.
func (s *series) observe(seconds float64, err error) {
	if err == nil {
		s.ok.Observe(seconds)
		return
	}
	s.failed(errorType(err)).Observe(seconds)
}

// failed returns the observer of errors of type et, making it on first use;
// past maxErrorTypes, the observer of Other.
func (s *series) failed(et string) prometheus.Observer {
	if o, ok := s.errs.load(et); ok {
		return o
	}
	if et != Other && !s.nErrs.take(maxErrorTypes) {
		et = Other
		if o, ok := s.errs.load(et); ok {
			return o
		}
	}
	return s.errs.loadOrAdd(et, func() (prometheus.Observer, bool) { return observer(s.vec, s.summary, et), true })
}

// A table maps strings to values that are read far more often than added
// and never removed: a lookup takes no lock, and each addition copies the
// map, which a bounded number of keys keeps cheap.
type table[V any] struct {
	mu sync.Mutex // serialises additions
	m  atomic.Pointer[map[string]V]
}

func (t *table[V]) load(k string) (V, bool) {
	if m := t.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// loadOrAdd returns k's value, or the value create makes for it, which is
// added unless create says not to keep it.
func (t *table[V]) loadOrAdd(k string, create func() (v V, keep bool)) V {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	v, keep := create()
	if !keep {
		return v
	}
	m := make(map[string]V, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[k] = v
	t.m.Store(&m)
	return v
}

func lenOf[V any](m *map[string]V) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// bounded counts up to a limit.
type bounded struct{ n atomic.Int64 }

// full reports whether limit is reached.
func (b *bounded) full(limit int64) bool { return b.n.Load() >= limit }

// take counts one more unless that would pass limit, and says whether it did.
func (b *bounded) take(limit int64) bool {
	for {
		n := b.n.Load()
		if n >= limit {
			return false
		}
		if b.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}
