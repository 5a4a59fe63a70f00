package pgcluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// A WriteProbe measures when the cluster accepts writes, with nothing of the
// module under test in the way: every attempt is a fresh pgx.Connect to
// PrimaryURL and one INSERT, committed as the cluster commits (synchronously
// replicated when a secondary is attached).
type WriteProbe struct {
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	attempts []Attempt
}

// An Attempt is one of a WriteProbe's writes.
type Attempt struct {
	Start, End time.Time
	Err        error // nil: the write committed
}

// probeTable is where the probe writes; Start makes it.
const probeTable = "pgcluster_probe"

// StartWriteProbe starts writing every interval until Stop.
func (c *Cluster) StartWriteProbe(interval time.Duration) (*WriteProbe, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.PrimaryURL("postgres"))
	if err != nil {
		return nil, fmt.Errorf("write probe: %w", err)
	}
	_, err = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+probeTable+" (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
	conn.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("write probe: %w", err)
	}
	p := &WriteProbe{stop: make(chan struct{}), done: make(chan struct{})}
	url := c.PrimaryURL("postgres") + "&connect_timeout=1"
	go func() {
		defer close(p.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			a := Attempt{Start: time.Now()}
			a.Err = probeOnce(url)
			a.End = time.Now()
			p.mu.Lock()
			p.attempts = append(p.attempts, a)
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p, nil
}

func probeOnce(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "INSERT INTO "+probeTable+" DEFAULT VALUES")
	return err
}

// Stop stops the probe and returns its attempts, oldest first.
func (p *WriteProbe) Stop() []Attempt {
	close(p.stop)
	<-p.done
	return p.Attempts()
}

// Attempts returns the attempts so far, oldest first.
func (p *WriteProbe) Attempts() []Attempt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Attempt(nil), p.attempts...)
}

// An Outage is a time the probe's writes failed.
type Outage struct {
	LastOK  time.Time // end of the last write that committed before it
	FirstOK time.Time // end of the first write that committed after it
	Failed  int       // attempts that failed in between
}

// Duration is how long no write was accepted, to the probe's resolution
// (its interval plus a connect).
func (o Outage) Duration() time.Duration { return o.FirstOK.Sub(o.LastOK) }

// OutageAfter finds the first outage in attempts that starts after from,
// and whether there is one that has ended.
func OutageAfter(attempts []Attempt, from time.Time) (Outage, bool) {
	var o Outage
	for _, a := range attempts {
		if a.Start.Before(from) {
			if a.Err == nil {
				o.LastOK = a.End
			}
			continue
		}
		switch {
		case a.Err != nil:
			o.Failed++
		case o.Failed > 0:
			o.FirstOK = a.End
			return o, true
		default:
			o.LastOK = a.End
		}
	}
	return o, false
}
