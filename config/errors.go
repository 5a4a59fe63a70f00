package config

import "errors"

// ErrNoDatabaseURL is returned when neither DATABASE_URL nor DIRECT_URL is set.
var ErrNoDatabaseURL = errors.New("neither DATABASE_URL nor DIRECT_URL is set: " +
	"set DATABASE_URL (used at runtime) or DIRECT_URL (used for migrations); each falls back to the other")

// A VarError reports an environment variable whose value cannot be used.
type VarError struct {
	Var string // the variable at fault, e.g. "DB_MAX_CONNS"
	Err error  // why; never contains a database URL or a part of one
}

func (e *VarError) Error() string { return e.Var + ": " + e.Err.Error() }

func (e *VarError) Unwrap() error { return e.Err }

// problems collects the errors of a parse, one per variable: a variable that
// did not parse is zero afterwards, which validation may dislike as well.
type problems struct {
	errs     []error
	reported map[string]bool
}

// add records err, or each error it joins.
func (p *problems) add(err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			p.add(e)
		}
		return
	}
	if err == nil {
		return
	}
	var ve *VarError
	if errors.As(err, &ve) {
		if p.reported[ve.Var] {
			return
		}
		if p.reported == nil {
			p.reported = map[string]bool{}
		}
		p.reported[ve.Var] = true
	}
	p.errs = append(p.errs, err)
}

// err joins what was recorded.
func (p *problems) err() error { return errors.Join(p.errs...) }
