package dbmodule_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// This file tests that a connection gone silent is found out by its ping
// and replaced, through blackhole, a proxy that can stop forwarding.

// blackhole is a TCP proxy whose connections can be made to swallow
// everything, like a network that stops answering without closing.
type blackhole struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	links  []*holeLink
	wg     sync.WaitGroup
}

type holeLink struct {
	client, server net.Conn
	dead           atomic.Bool
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, target: target}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			k := &holeLink{client: c, server: s}
			b.mu.Lock()
			b.links = append(b.links, k)
			b.mu.Unlock()
			b.wg.Add(2)
			go k.pipe(&b.wg, c, s)
			go k.pipe(&b.wg, s, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, k := range b.links {
			k.client.Close()
			k.server.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

// pipe copies src to dst, dropping everything once the link is dead.
func (k *holeLink) pipe(wg *sync.WaitGroup, src, dst net.Conn) {
	defer wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !k.dead.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, or closed by the other side's pipe or the cleanup
		}
	}
}

// silence makes every current connection swallow everything.
func (b *blackhole) silence() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range b.links {
		k.dead.Store(true)
	}
}

// A connection that goes silent (no reset, no FIN) is found out by the
// ping after a quiet health-check period, and replaced.
func TestListenerPingsAQuietConnection(t *testing.T) {
	cfg := pg.Database(t)
	u, err := url.Parse(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	hole := newBlackhole(t, u.Host)
	u.Host = hole.ln.Addr().String()
	cfg.URL = u.String()
	cfg.HealthCheckPeriod = 200 * time.Millisecond
	cfg.PingTimeout = 200 * time.Millisecond
	ctx := context.Background()
	log, logs := observed()
	l, err := dbmodule.OpenListener(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	rec := newNotifLog()
	if _, err := l.Listen(ctx, "quiet", rec.handler()); err != nil {
		t.Fatal(err)
	}
	hole.silence()
	silenced := time.Now()
	dbtest.WaitFor(t, "a gap after the silence", func() bool { return rec.gaps("quiet") == 1 })
	found := rec.of("quiet")[0].at.Sub(silenced)
	sendNotify(t, cfg.URL, "quiet", "back")
	dbtest.WaitFor(t, "a notification on the new connection", func() bool { return rec.has("quiet", "back") })
	lost := logs.FilterMessage("database listener lost its connection; reconnecting").All()
	if len(lost) != 1 || !strings.Contains(fmt.Sprint(lost[0].ContextMap()["error"]), "ping after") {
		t.Errorf("loss log lines: %v", lost)
	}
	t.Logf("silent connection replaced, gap reported, %s after the network went quiet (health-check period 200ms, ping timeout 200ms)", found)
	if found > 3*time.Second {
		t.Errorf("a silent connection took %s to be replaced", found)
	}
}
