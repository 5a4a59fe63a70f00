package dbtest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// kit is what hands out databases once the server runs: the owner's
// connection, the role, the template and its pool of clones, and the
// goroutines that build and drop clones.
type kit struct {
	roleURL  func(db string) (string, error)
	external bool // TEST_DATABASE_URL's server, not ours
	clones   *clones

	cancel   context.CancelFunc
	builders sync.WaitGroup
	stopped  chan struct{} // closed when the builders have stopped
	dropper  chan struct{} // closed when the dropper has stopped
	owner    *pgx.Conn
}

// kitConfig is what newKit needs to know about the server.
type kitConfig struct {
	admin      *pgx.ConnConfig                 // superuser, on the server URL's database
	password   string                          // the role's
	roleURL    func(db string) (string, error) // a database's URL as the role
	external   bool
	migrator   Migrator
	extensions []string
}

// newKit connects as the owner, sweeps up what dead owners left, sets up
// the role and the template, and starts the builders and the dropper.
func newKit(ctx context.Context, kc kitConfig) (_ *kit, err error) {
	owner, err := newOwnerID()
	if err != nil {
		return nil, err
	}
	// Every connection of the kit names its owner, for people looking at
	// pg_stat_activity.
	kc.admin = kc.admin.Copy()
	kc.admin.RuntimeParams["application_name"] = fmt.Sprintf("dbtest %08x", owner)
	conn, err := pgx.ConnectConfig(ctx, kc.admin)
	if err != nil {
		return nil, fmt.Errorf("connect as the superuser: %w", err)
	}
	defer func() {
		if err != nil {
			closeOwned(conn)
		}
	}()
	var version int
	var fsync bool
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int, current_setting('fsync')::bool").Scan(&version, &fsync); err != nil {
		return nil, fmt.Errorf("read the server's version: %w", err)
	}
	if version < 130000 {
		// DROP DATABASE ... WITH (FORCE) is 13's.
		return nil, fmt.Errorf("the test server runs PostgreSQL %d.%d; dbtest needs 13 or later", version/10000, version%10000/100)
	}
	if err := holdOwnerLock(ctx, conn, owner); err != nil {
		return nil, err
	}
	if err := sweep(ctx, conn); err != nil {
		return nil, err
	}
	if err := ensureRole(ctx, conn, kc.password); err != nil {
		return nil, err
	}

	hash := "empty"
	if kc.migrator != nil {
		if hash, err = kc.migrator.Hash(); err != nil {
			return nil, fmt.Errorf("hash the schema: %w", err)
		}
	}
	spec := templateSpec{name: templateName(hash, kc.extensions), migrator: kc.migrator, extensions: kc.extensions, admin: kc.admin}
	if spec.roleURL, err = kc.roleURL(spec.name); err != nil {
		return nil, err
	}
	if err := ensureTemplate(ctx, conn, spec); err != nil {
		return nil, err
	}
	var size int64
	if err := conn.QueryRow(ctx, "SELECT pg_database_size($1)", spec.name).Scan(&size); err != nil {
		return nil, fmt.Errorf("size of template %s: %w", spec.name, err)
	}

	k := &kit{
		roleURL: kc.roleURL, external: kc.external, owner: conn,
		clones:  newClones(spec.name, cloneStrategy(version, fsync, size), kc.admin, owner),
		stopped: make(chan struct{}), dropper: make(chan struct{}),
	}
	// The builders' and dropper's context outlives the caller's, which
	// only bounds the setup; close ends it.
	bg, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	for range busyBuilds {
		k.builders.Add(1)
		go func() {
			defer k.builders.Done()
			k.clones.build(bg)
		}()
	}
	go func() {
		k.builders.Wait()
		close(k.stopped)
	}()
	go func() {
		defer close(k.dropper)
		k.clones.dropAll(bg, conn, k.stopped)
	}()
	return k, nil
}

// close stops handing out clones, lets the builders finish the clone at
// hand, drops every clone not handed out and every released one, and
// closes the owner's connection. A clone handed out and never released (a
// failed test's) is left. ctx bounds it all.
func (k *kit) close(ctx context.Context) error {
	k.clones.shut()
	var err error
	select {
	case <-k.dropper:
	case <-ctx.Done():
		err = fmt.Errorf("dbtest: drop the test databases: %w", ctx.Err())
	}
	k.cancel()
	<-k.stopped
	<-k.dropper
	closeOwned(k.owner)
	k.clones.mu.Lock()
	defer k.clones.mu.Unlock()
	return errors.Join(append([]error{err}, k.clones.dropErrs...)...)
}
