package pgtestdbmigrator

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/peterldowns/pgtestdb"

	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// New adapts a pgtestdb migrator to dbtest.Migrator.
func New(m pgtestdb.Migrator) dbtest.Migrator { return migrator{m} }

type migrator struct{ m pgtestdb.Migrator }

// Hash is the pgtestdb migrator's hash, set apart from other kinds of
// schema source.
func (a migrator) Hash() (string, error) {
	h, err := a.m.Hash()
	if err != nil {
		return "", fmt.Errorf("pgtestdb migrator: %w", err)
	}
	return "pgtestdb\x00" + h, nil
}

// Migrate runs the pgtestdb migrator on the template that conn is on.
func (a migrator) Migrate(ctx context.Context, conn *pgx.Conn) error {
	cc := conn.Config()
	// The template's URL, which dbtest built: its user info is encoded,
	// so the first '?' starts the parameters (sslmode and the like).
	_, params, _ := strings.Cut(cc.ConnString(), "?")
	host := cc.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // an IPv6 address, as Config.URL pastes it in
	}
	conf := pgtestdb.Config{
		DriverName: "pgx",
		Host:       host,
		Port:       strconv.Itoa(int(cc.Port)),
		User:       cc.User,
		Password:   cc.Password,
		Database:   cc.Database,
		Options:    params,
		TestRole:   &pgtestdb.Role{Username: cc.User, Password: cc.Password},
	}
	db := stdlib.OpenDB(*cc)
	defer db.Close()
	if err := a.m.Migrate(ctx, db, conf); err != nil {
		return fmt.Errorf("pgtestdb migrator: %w", err)
	}
	return nil
}
