package migrate

import (
	"errors"
	"time"
)

// State says where a migration stands in the database.
type State string

const (
	// StatePending is a migration the database has not applied.
	StatePending State = "pending"
	// StateApplied is a migration the database has applied.
	StateApplied State = "applied"
	// StateNoFile is a version the database has applied that none of the
	// files has: the migration of a newer build, or a file since removed.
	StateNoFile State = "applied, no file"
)

// Status is where one migration stands.
type Status struct {
	Version   int64
	File      string    // the migration's file; empty for StateNoFile
	State     State     //
	AppliedAt time.Time // when it was applied; zero when pending
}

// Result is a migration applied or rolled back.
type Result struct {
	Version  int64
	File     string
	Duration time.Duration
}

var (
	// ErrNothingToRollBack is Down's error when the database has no
	// migration applied.
	ErrNothingToRollBack = errors.New("no migration to roll back")
	// ErrOutOfOrder is Up's error when files older than the database's
	// version are not applied: goose refuses them too, as they may assume
	// a schema older than the database's. Renumber them above the version.
	ErrOutOfOrder = errors.New("migrations older than the database's version are not applied")
)
