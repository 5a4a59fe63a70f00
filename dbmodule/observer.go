package dbmodule

import "time"

// A StatementObserver is told how each statement, batch and copy went by the
// pool's Tracer, which times each once for all its observers. It is called
// on the caller's goroutine for every statement, so it must be quick and
// must not block. Provide one to the module with AsStatementObserver.
type StatementObserver interface {
	ObserveStatement(Statement)
}

// A Statement is what a StatementObserver learns of one statement.
type Statement struct {
	Kind     StatementKind
	Name     string        // StatementName of its SQL (a batch's: the SQL all its statements share; a copy's: ""), fit for a label
	Duration time.Duration // from sending it to its end: rows read and all
	Err      error
}

// StatementKind says what a Statement was.
type StatementKind uint8

// The kinds of statements.
const (
	QueryStatement    StatementKind = iota // Exec, Query, QueryRow; transaction statements too
	BatchStatement                         // a whole SendBatch
	CopyFromStatement                      // a CopyFrom
)
