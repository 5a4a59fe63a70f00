package dbtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// kitVersion changes when the kit builds templates differently, so that
// templates an older kit left on a TEST_DATABASE_URL server are not reused.
const kitVersion = "2"

// templateName names the template of a schema: its hash, the role that
// owns it and the extensions created in it.
func templateName(schemaHash string, extensions []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s", kitVersion, roleName, strings.Join(extensions, ","), schemaHash)
	return templatePrefix + hex.EncodeToString(h.Sum(nil))[:16]
}

// templateSpec is what a template is built from.
type templateSpec struct {
	name       string
	migrator   Migrator // nil for an empty schema
	extensions []string
	admin      *pgx.ConnConfig // superuser, to create extensions in it
	roleURL    string          // the template's URL as the role, for migrating
}

// ensureTemplate builds the template unless it exists, holding an advisory
// lock on conn (the owner's, on the server URL's database) so that test
// binaries sharing a server build each template once: the others wait,
// then find it built. A template is marked as one only when complete, so
// a database of its name that is not marked is a build that died, and is
// built again.
func ensureTemplate(ctx context.Context, conn *pgx.Conn, spec templateSpec) (err error) {
	// The name's first 32 bits of hash, as the lock's key.
	k, _ := strconv.ParseUint(spec.name[len(templatePrefix):][:8], 16, 32)
	key := int32(k >> 1)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", lockTemplate, key); err != nil {
		return fmt.Errorf("wait for the template lock: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", lockTemplate, key); uerr != nil && err == nil {
			err = fmt.Errorf("release the template lock: %w", uerr)
		}
	}()

	var exists, done bool
	err = conn.QueryRow(ctx, "SELECT true, datistemplate FROM pg_database WHERE datname = $1", spec.name).Scan(&exists, &done)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("look up template %s: %w", spec.name, err)
	}
	if done {
		return nil
	}
	if exists {
		if err := dropDatabase(ctx, conn, spec.name); err != nil {
			return fmt.Errorf("drop the unfinished template: %w", err)
		}
	}
	id := pgx.Identifier{spec.name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+id+" OWNER "+pgx.Identifier{roleName}.Sanitize()); err != nil {
		return fmt.Errorf("create template %s: %w", spec.name, err)
	}
	if err := buildTemplate(ctx, spec); err != nil {
		return fmt.Errorf("build template %s (left unfinished for a look; the next try builds it again): %w", spec.name, err)
	}
	if err := waitUnused(ctx, conn, spec.name); err != nil {
		return err
	}
	// No connections: CREATE DATABASE ... TEMPLATE fails while anyone is on it.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+id+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("mark template %s: %w", spec.name, err)
	}
	return nil
}

// buildTemplate creates the extensions as the superuser, as most need
// one, then runs the migrator as the role.
func buildTemplate(ctx context.Context, spec templateSpec) error {
	if len(spec.extensions) > 0 {
		cc := spec.admin.Copy()
		cc.Database = spec.name
		su, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return fmt.Errorf("connect to create extensions: %w", err)
		}
		defer closeConn(su)
		for _, ext := range spec.extensions {
			if _, err := su.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+pgx.Identifier{ext}.Sanitize()+" CASCADE"); err != nil {
				return fmt.Errorf("dbtest.Server.Extensions: %w", err)
			}
		}
		closeConn(su)
	}
	if spec.migrator == nil {
		return nil
	}
	cc, err := pgx.ParseConfig(spec.roleURL)
	if err != nil {
		return fmt.Errorf("template URL: %w", pgconnError(err))
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("connect to migrate: %w", err)
	}
	defer closeConn(conn)
	if err := spec.migrator.Migrate(ctx, conn); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	return nil
}

// waitUnused waits until the backends of the build's connections have
// gone: a client's close returns before its backend exits.
func waitUnused(ctx context.Context, conn *pgx.Conn, db string) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", db).Scan(&n); err != nil {
			return fmt.Errorf("wait for the template's connections to end: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the template's connections to end: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
