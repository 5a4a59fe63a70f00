package dbmodule_test

import (
	"strings"
	"testing"

	"github.com/fxpg/fxpg/dbmodule"
)

var statementNames = []struct{ sql, want string }{
	// What sqlc generates.
	{"-- name: GetAuthor :one\nSELECT id FROM authors WHERE id = $1\n", "GetAuthor"},
	{"-- name: ListAuthors :many\nSELECT id FROM authors", "ListAuthors"},
	{"-- name: CreateAuthors :copyfrom\nINSERT INTO authors (name) VALUES ($1)", "CreateAuthors"},
	{"-- name: get_author_v2 :one\r\nSELECT 1", "get_author_v2"},
	{"/* name: GetAuthor :one */\nSELECT 1", "GetAuthor"},
	{"/* name: GetAuthor*/ SELECT 1", "GetAuthor"},
	// What an app may write.
	{"\n\t-- name: Checkout :exec\nUPDATE carts SET done = true", "Checkout"},
	{"--name:Checkout\nSELECT 1", "Checkout"},
	{"-- name: Checkout", "Checkout"},
	// Not a name: the command, then.
	{"-- name: Get-Author :one\nSELECT 1", "SELECT"},
	{"-- name: 2Fast :one\nSELECT 1", "SELECT"},
	{"-- name: :one\nDELETE FROM t", "DELETE"},
	{"-- name: GetAuthor's :one\nSELECT 1", "SELECT"},
	{"-- name: " + strings.Repeat("N", 64) + " :one\nSELECT 1", "SELECT"},
	{"-- Name: GetAuthor :one\nSELECT 1", "SELECT"},
	{"-- GetAuthor fetches an author.\n-- name: GetAuthor :one\nSELECT 1", "SELECT"}, // the name must come first
	{"SELECT 1 -- name: GetAuthor", "SELECT"},
	// Commands, whatever their case, after any comments.
	{"select 1", "SELECT"},
	{"begin", "BEGIN"},
	{"commit", "COMMIT"},
	{"  Rollback;", "ROLLBACK"},
	{"/* a */ -- b\n /* c */insert into t values (1)", "INSERT"},
	{"WITH x AS (SELECT 1) SELECT * FROM x", "WITH"},
	{"CHECKPOINT", "CHECKPOINT"},
	{"set statement_timeout = 20", "SET"},
	// Nothing known: nothing of it.
	{"", ""},
	{"   ", ""},
	{"-- only a comment", ""},
	{"/* unterminated SELECT 1", ""},
	{"(SELECT 1)", ""},
	{"SELECTED 1", ""},
	{"select1", ""},
	{"select_1", ""},
	{"CHECKPOINTS", ""},
	{"sélect 1", ""},
	{"DROPTABLE t", ""},
	{"'; DROP TABLE users; --", ""},
}

func TestStatementName(t *testing.T) {
	for _, tt := range statementNames {
		if got := dbmodule.StatementName(tt.sql); got != tt.want {
			t.Errorf("StatementName(%q) = %q, want %q", tt.sql, got, tt.want)
		}
	}
}

// On the hot path: no allocation, whatever the statement.
func TestStatementNameAllocatesNothing(t *testing.T) {
	for _, tt := range statementNames {
		if n := testing.AllocsPerRun(100, func() { dbmodule.StatementName(tt.sql) }); n != 0 {
			t.Errorf("StatementName(%q) allocates %v times", tt.sql, n)
		}
	}
}

// Whatever the SQL, the name is "", a command, or an identifier of at most
// 63 bytes that the SQL declares: never other SQL text.
func FuzzStatementName(f *testing.F) {
	for _, tt := range statementNames {
		f.Add(tt.sql)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		name := dbmodule.StatementName(sql)
		if name == "" {
			return
		}
		if len(name) > 63 {
			t.Fatalf("StatementName(%q) = %q, longer than 63 bytes", sql, name)
		}
		for i, c := range []byte(name) {
			if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
				t.Fatalf("StatementName(%q) = %q, not an identifier", sql, name)
			}
		}
		if !strings.Contains(sql, name) && !strings.Contains(strings.ToUpper(sql), name) {
			t.Fatalf("StatementName(%q) = %q, which the SQL does not hold", sql, name)
		}
	})
}

func BenchmarkStatementName(b *testing.B) {
	for _, bb := range []struct{ name, sql string }{
		{"sqlc", "-- name: GetCustomerByEmail :one\nSELECT id, email, name, created_at FROM customers\nWHERE email = lower($1)\n"},
		{"command", "select $1::int"},
		{"unknown", "(SELECT 1)"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				dbmodule.StatementName(bb.sql)
			}
		})
	}
}
