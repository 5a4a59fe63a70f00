package dbmodule

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// maxNameLen bounds a declared name, as PostgreSQL bounds an identifier
// (NAMEDATALEN - 1).
const maxNameLen = 63

// StatementName returns what a statement is called in telemetry: the name it
// declares, as sqlc writes one at the start of every statement it generates,
//
//	-- name: GetAuthor :one
//	SELECT ...
//
// (or /* name: GetAuthor :one */; an app names its own SQL the same way);
// failing that, its SQL command in capitals (SELECT, BEGIN, COMMIT, ...) when
// its first word after any comments is one of PostgreSQL's commands; and ""
// otherwise.
//
// It never returns other SQL text: a declared name counts only as an
// identifier (ASCII letters, digits and _, not starting with a digit) of at
// most 63 bytes, so a metric label or span name made of it has as many values
// as the app declares names, plus the commands. It allocates nothing: a
// declared name is a substring of sql, a command a constant.
func StatementName(sql string) string {
	sql = trimSpace(sql)
	if name, ok := declaredName(sql); ok {
		return name
	}
	return command(skipComments(sql))
}

// statementName is the Name of a Statement of kind whose SQL, for a batch
// the SQL all its statements share, is sql.
func statementName(kind StatementKind, sql string) string {
	if kind == CopyFromStatement {
		return "" // sql is the table, which declares nothing
	}
	return StatementName(sql)
}

// batchSQL returns the SQL that every statement queued in b shares, as in a
// batch sqlc generates (:batchexec, :batchone, :batchmany), or "" when they
// differ. The statements of such a batch share one string constant, which
// compares at the cost of a pointer.
func batchSQL(b *pgx.Batch) string {
	if b == nil || len(b.QueuedQueries) == 0 {
		return ""
	}
	sql := b.QueuedQueries[0].SQL
	for _, q := range b.QueuedQueries[1:] {
		if q.SQL != sql {
			return ""
		}
	}
	return sql
}

// declaredName reads the name that s, trimmed of leading space, declares in
// its first comment.
func declaredName(s string) (string, bool) {
	block := strings.HasPrefix(s, "/*")
	if !block && !strings.HasPrefix(s, "--") {
		return "", false
	}
	rest, ok := strings.CutPrefix(trimBlanks(s[2:]), "name:")
	if !ok {
		return "", false
	}
	rest = trimBlanks(rest)
	n := identLen(rest)
	if n == 0 || n > maxNameLen {
		return "", false
	}
	// The name ends at a space (sqlc's " :one"), the end of the comment or
	// of the SQL; anything else means it was not a plain identifier.
	if n < len(rest) && !isSpace(rest[n]) && !(block && strings.HasPrefix(rest[n:], "*/")) {
		return "", false
	}
	return rest[:n], true
}

// skipComments strips s, trimmed of leading space, of its leading comments
// and the space after them. An unterminated block comment leaves "".
func skipComments(s string) string {
	for {
		var ok bool
		switch {
		case strings.HasPrefix(s, "--"):
			_, s, ok = strings.Cut(s, "\n")
		case strings.HasPrefix(s, "/*"):
			_, s, ok = strings.Cut(s[2:], "*/")
		default:
			return s
		}
		if !ok {
			return ""
		}
		s = trimSpace(s)
	}
}

// command returns the PostgreSQL command that s starts with, in capitals,
// or "".
func command(s string) string {
	const longest = len("CHECKPOINT")
	var word [longest]byte
	n := 0
	for ; n < len(s) && isLetter(s[n]); n++ {
		if n == longest {
			return ""
		}
		word[n] = s[n] &^ 0x20 // ASCII upper case
	}
	if n < len(s) && (isDigit(s[n]) || s[n] == '_') {
		return "" // an identifier, not a keyword
	}
	// The commands of PostgreSQL's SQL reference, by their first word.
	switch string(word[:n]) {
	case "ABORT":
		return "ABORT"
	case "ALTER":
		return "ALTER"
	case "ANALYZE":
		return "ANALYZE"
	case "BEGIN":
		return "BEGIN"
	case "CALL":
		return "CALL"
	case "CHECKPOINT":
		return "CHECKPOINT"
	case "CLOSE":
		return "CLOSE"
	case "CLUSTER":
		return "CLUSTER"
	case "COMMENT":
		return "COMMENT"
	case "COMMIT":
		return "COMMIT"
	case "COPY":
		return "COPY"
	case "CREATE":
		return "CREATE"
	case "DEALLOCATE":
		return "DEALLOCATE"
	case "DECLARE":
		return "DECLARE"
	case "DELETE":
		return "DELETE"
	case "DISCARD":
		return "DISCARD"
	case "DO":
		return "DO"
	case "DROP":
		return "DROP"
	case "END":
		return "END"
	case "EXECUTE":
		return "EXECUTE"
	case "EXPLAIN":
		return "EXPLAIN"
	case "FETCH":
		return "FETCH"
	case "GRANT":
		return "GRANT"
	case "IMPORT":
		return "IMPORT"
	case "INSERT":
		return "INSERT"
	case "LISTEN":
		return "LISTEN"
	case "LOAD":
		return "LOAD"
	case "LOCK":
		return "LOCK"
	case "MERGE":
		return "MERGE"
	case "MOVE":
		return "MOVE"
	case "NOTIFY":
		return "NOTIFY"
	case "PREPARE":
		return "PREPARE"
	case "REASSIGN":
		return "REASSIGN"
	case "REFRESH":
		return "REFRESH"
	case "REINDEX":
		return "REINDEX"
	case "RELEASE":
		return "RELEASE"
	case "RESET":
		return "RESET"
	case "REVOKE":
		return "REVOKE"
	case "ROLLBACK":
		return "ROLLBACK"
	case "SAVEPOINT":
		return "SAVEPOINT"
	case "SECURITY":
		return "SECURITY"
	case "SELECT":
		return "SELECT"
	case "SET":
		return "SET"
	case "SHOW":
		return "SHOW"
	case "START":
		return "START"
	case "TABLE":
		return "TABLE"
	case "TRUNCATE":
		return "TRUNCATE"
	case "UNLISTEN":
		return "UNLISTEN"
	case "UPDATE":
		return "UPDATE"
	case "VACUUM":
		return "VACUUM"
	case "VALUES":
		return "VALUES"
	case "WITH":
		return "WITH"
	}
	return ""
}

func identLen(s string) int {
	n := 0
	for n < len(s) && (isLetter(s[n]) || s[n] == '_' || (n > 0 && isDigit(s[n]))) {
		n++
	}
	return n
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// trimBlanks trims leading spaces and tabs, staying on the line.
func trimBlanks(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

// trimSpace trims leading ASCII space, newlines included.
func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	return s
}
