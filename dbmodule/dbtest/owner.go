package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Advisory lock classes (the first key of the two-key form), so that the
// kit's locks collide with no one else's: "dbto" for owners, "dbtt" for
// template builds and role setup.
const (
	lockOwner    = 0x6462746f
	lockTemplate = 0x64627474
)

// Names of the kit's databases. A clone's name carries its owner, the test
// process that made it, as a random id, and the process id, for people.
// Every connection of the owner that makes or drops clones holds the
// owner's advisory lock in shared mode, so the lock is held until the last
// of them has ended on the server (a backend finishes a CREATE DATABASE
// that its killed client sent, and only then notices that the client is
// gone). A clone whose owner's lock nobody holds is thus a leftover of an
// interrupted run, or a failed test's, and the next process to start drops
// it.
const (
	clonePrefix    = "dbtest_c_"
	templatePrefix = "dbtest_t_"
)

// newOwnerID returns a random positive int32, an owner's lock key and name.
func newOwnerID() (int32, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("owner id: %w", err)
	}
	return int32(binary.BigEndian.Uint32(b[:]) >> 1), nil
}

func cloneName(owner int32, pid, seq int) string {
	return fmt.Sprintf("%s%08x_%d_%d", clonePrefix, owner, pid, seq)
}

// ownerOf returns the owner id in a clone's name.
func ownerOf(name string) (int32, bool) {
	rest, ok := strings.CutPrefix(name, clonePrefix)
	if !ok || len(rest) < 8 {
		return 0, false
	}
	id, err := strconv.ParseUint(rest[:8], 16, 31)
	return int32(id), err == nil
}

// holdOwnerLock takes the owner's lock on conn until conn ends.
func holdOwnerLock(ctx context.Context, conn *pgx.Conn, owner int32) error {
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock_shared($1, $2)", lockOwner, owner); err != nil {
		return fmt.Errorf("take the owner lock: %w", err)
	}
	return nil
}

// closeOwned releases conn's locks, so that they are gone when it returns
// rather than when the server notices the closed connection, and closes it.
func closeOwned(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Exec(ctx, "SELECT pg_advisory_unlock_all()") //nolint:errcheck // closing ends the session, and its locks, anyway
	closeConn(conn)
}

// sweep drops the clones whose owners are gone. The databases are listed
// before the locks: an owner takes its lock before it makes a clone, so a
// clone listed with no lock held has no live owner.
func sweep(ctx context.Context, conn *pgx.Conn) error {
	rows, _ := conn.Query(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, clonePrefix)
	clones, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list test databases: %w", err)
	}
	rows, _ = conn.Query(ctx, `SELECT objid::int8 FROM pg_locks
		WHERE locktype = 'advisory' AND objsubid = 2 AND classid::int8 = $1 AND granted`, lockOwner)
	held, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("list test processes: %w", err)
	}
	live := map[int64]bool{}
	for _, id := range held {
		live[id] = true
	}
	for _, name := range clones {
		if id, ok := ownerOf(name); ok && !live[int64(id)] {
			if err := dropDatabase(ctx, conn, name); err != nil {
				return fmt.Errorf("drop a leftover test database: %w", err)
			}
		}
	}
	return nil
}

// dropDatabase drops a database, disconnecting whoever is still on it (a
// pool the test leaked, say).
func dropDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}
