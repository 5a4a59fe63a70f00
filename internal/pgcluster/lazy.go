package pgcluster

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Lazy is the cluster of one test binary: started by the first test that
// asks for it, shared by the others, stopped by Close, which TestMain calls
// after the tests have run.
type Lazy struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Get returns the cluster, starting it on first use; it fails the test if
// the cluster cannot start (pg_auto_failover missing, say: the error names
// the command that installs it).
func (l *Lazy) Get(t testing.TB) *Cluster {
	t.Helper()
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := time.Now()
		l.c, l.err = Start(ctx)
		if l.err == nil {
			t.Logf("pg_auto_failover cluster (monitor and 2 nodes) ready in %s", time.Since(start).Round(time.Millisecond))
		}
	})
	if l.err != nil {
		t.Fatalf("start pg_auto_failover cluster: %v", l.err)
	}
	return l.c
}

// Close stops the cluster if one was started.
func (l *Lazy) Close() error {
	if l.c == nil {
		return nil
	}
	return l.c.Close()
}
