package dbtest

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// roleName is the unprivileged role that owns the templates and test
// databases, as an app's role owns its database: tests run with an app's
// privileges, not a superuser's.
const roleName = "dbtest"

// rolePassword derives the role's password from the superuser's, so that
// every test binary using one server agrees on it without storing it, and
// no one who lacks the superuser's password can log in as the role.
func rolePassword(superuserPassword string) string {
	h := sha256.Sum256([]byte("fxpg dbtest role\x00" + superuserPassword))
	return hex.EncodeToString(h[:16])
}

// ensureRole creates the role, or resets it to what the kit needs, under
// a lock that serialises test binaries sharing the server.
func ensureRole(ctx context.Context, conn *pgx.Conn, password string) error {
	verifier, err := scramVerifier(password)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, 0)", lockTemplate); err != nil {
			return fmt.Errorf("wait for the role lock: %w", err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", roleName).Scan(&exists); err != nil {
			return fmt.Errorf("look up role %s: %w", roleName, err)
		}
		verb := "ALTER"
		if !exists {
			verb = "CREATE"
		}
		// A SCRAM verifier, not the password: the statement may be logged.
		// The verifier is base64 and '$', ':' only, safe in a literal.
		q := fmt.Sprintf("%s ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '%s'",
			verb, pgx.Identifier{roleName}.Sanitize(), verifier)
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s role %s: %w", verb, roleName, err)
		}
		return nil
	})
}

// scramVerifier computes what PostgreSQL stores for a SCRAM-SHA-256
// password (RFC 5802, 7677; PostgreSQL's default of 4096 iterations), so
// that the password itself never reaches the server's statement log.
// password must be ASCII without control characters: SASLprep leaves those
// as they are.
func scramVerifier(password string) (string, error) {
	const iterations = 4096
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram salt: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("scram key: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(mac(salted, "Server Key"))), nil
}

// databaseURL returns the server URL admin with database db and the given
// user and password instead of its own, keeping everything else (hosts,
// TLS settings, options). admin has passed config.DB's validation, which
// refuses the URLs that net/url and pgconn would split differently; the
// result is checked against pgconn's reading of admin all the same.
func databaseURL(admin, user, password, db string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("server URL is not a URL")
	}
	u.User = url.UserPassword(user, password)
	u.Path, u.RawPath = "/"+db, ""
	q := u.Query()
	for _, k := range []string{"user", "password", "dbname"} {
		q.Del(k)
	}
	u.RawQuery = q.Encode()
	out := u.String()

	want, err := pgconn.ParseConfig(admin)
	if err != nil {
		return "", fmt.Errorf("server URL: %w", pgconnError(err))
	}
	got, err := pgconn.ParseConfig(out)
	if err != nil {
		return "", fmt.Errorf("test database URL: %w", pgconnError(err))
	}
	if got.Host != want.Host || got.Port != want.Port || got.Database != db || got.User != user || (got.TLSConfig == nil) != (want.TLSConfig == nil) {
		return "", fmt.Errorf("test database URL does not reach the server URL's host %s:%d as %s", want.Host, want.Port, user)
	}
	return out, nil
}

// pgconnError keeps only what pgconn says is wrong: its ParseConfigError
// redacts the password from the connection string it quotes, but the
// string carries the role's password here, which needs no quoting either.
func pgconnError(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		if inner := pe.Unwrap(); inner != nil {
			return inner
		}
		return errors.New("cannot be parsed")
	}
	return err
}
