package migrate

import (
	"errors"
	"fmt"
	"strings"
)

// A ParseError is a migration file that does not follow goose's SQL format,
// with the line at fault; Line is 0 when the fault is the whole file.
type ParseError struct {
	File string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// A section is the Up or the Down part of a migration file.
type section struct {
	// text is what a migration in a transaction sends, in one simple-protocol
	// query: the section's lines as in the file, so that the server's error
	// positions map to file lines, except that each StatementEnd line gets a
	// semicolon in front, as goose ends a statement there.
	text  string
	line  int         // file line of text's first line
	stmts []statement // what a migration without a transaction sends, one at a time
}

// empty reports whether the section has no SQL, only comments, if anything.
func (s section) empty() bool { return len(s.stmts) == 0 }

// parsed is a migration file's content.
type parsed struct {
	up, down section
	noTx     bool
}

// parse reads a goose SQL migration: "-- +goose Up", the SQL that applies
// it, optionally "-- +goose Down" and the SQL that rolls it back.
// "-- +goose StatementBegin" and "-- +goose StatementEnd" make what they
// enclose one statement, and "-- +goose NO TRANSACTION" runs the migration
// outside a transaction, one statement at a time. Errors are *ParseErrors.
func parse(file, content string) (parsed, error) {
	var (
		p         parsed
		upAt      int // line of the Up annotation; 0 before it
		downAt    int
		beginAt   int // line of an open StatementBegin
		blocks    [][2]int
		upLines   []string
		downLines []string
		cur       *[]string
		errAt     = func(line int, format string, args ...any) error {
			return &ParseError{File: file, Line: line, Err: fmt.Errorf(format, args...)}
		}
	)
	content = strings.TrimPrefix(content, "\ufeff") // a byte order mark some editors write
	lines := strings.Split(content, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // the file's final newline ends a line, it starts none
	}
	for i, raw := range lines {
		n := i + 1
		cmd, ok, err := annotation(raw)
		if err != nil {
			return parsed{}, errAt(n, "%v", err)
		}
		if !ok {
			if cur == nil {
				if t := strings.TrimSpace(raw); t != "" && !strings.HasPrefix(t, "--") {
					return parsed{}, errAt(n, "SQL before the -- +goose Up annotation")
				}
				continue
			}
			*cur = append(*cur, raw)
			continue
		}
		switch cmd {
		case "up":
			if upAt != 0 {
				return parsed{}, errAt(n, "a second -- +goose Up (the first is on line %d)", upAt)
			}
			upAt, cur = n, &upLines
			continue // the section starts on the next line
		case "down":
			switch {
			case upAt == 0:
				return parsed{}, errAt(n, "-- +goose Down before -- +goose Up")
			case downAt != 0:
				return parsed{}, errAt(n, "a second -- +goose Down (the first is on line %d)", downAt)
			case beginAt != 0:
				return parsed{}, errAt(n, "-- +goose Down inside the StatementBegin of line %d", beginAt)
			}
			downAt, cur = n, &downLines
			continue
		case "statementbegin":
			switch {
			case upAt == 0:
				return parsed{}, errAt(n, "-- +goose StatementBegin before -- +goose Up")
			case beginAt != 0:
				return parsed{}, errAt(n, "-- +goose StatementBegin inside the StatementBegin of line %d", beginAt)
			}
			beginAt = n
		case "statementend":
			if beginAt == 0 {
				return parsed{}, errAt(n, "-- +goose StatementEnd without a StatementBegin")
			}
			blocks = append(blocks, [2]int{beginAt, n})
			beginAt = 0
			raw = "; " + raw
		case "no transaction":
			p.noTx = true
		}
		if cur != nil {
			*cur = append(*cur, raw) // an annotation is a comment, and keeps the lines aligned
		}
	}
	switch {
	case upAt == 0:
		return parsed{}, &ParseError{File: file, Err: errors.New("no -- +goose Up annotation")}
	case beginAt != 0:
		return parsed{}, errAt(beginAt, "-- +goose StatementBegin without a StatementEnd")
	}
	// Semicolons between a StatementBegin and its StatementEnd end nothing;
	// the one put on the StatementEnd line does.
	keep := func(line int) bool {
		for _, b := range blocks {
			if line > b[0] && line < b[1] {
				return true
			}
		}
		return false
	}
	var err error
	if p.up, err = newSection(file, upLines, upAt+1, keep); err != nil {
		return parsed{}, err
	}
	if downAt != 0 {
		if p.down, err = newSection(file, downLines, downAt+1, keep); err != nil {
			return parsed{}, err
		}
	}
	return p, nil
}

func newSection(file string, lines []string, first int, keep func(int) bool) (section, error) {
	text := strings.Join(lines, "\n")
	stmts, err := split(text, first, keep)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.File = file
		}
		return section{}, err
	}
	return section{text: text, line: first, stmts: stmts}, nil
}

// annotation returns the command of a "-- +goose COMMAND" line, lower-case,
// and whether the line is one. A comment that starts with +goose but names
// no command goose knows is an error, as goose makes it one.
func annotation(line string) (string, bool, error) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "--") {
		return "", false, nil
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimLeft(t, "-")), "+goose")
	if !ok {
		return "", false, nil
	}
	cmd := strings.ToLower(strings.Join(strings.Fields(rest), " "))
	switch cmd {
	case "up", "down", "statementbegin", "statementend", "no transaction":
		return cmd, true, nil
	case "envsub on", "envsub off":
		return "", false, errors.New("-- +goose ENVSUB is not supported: write the values into the migration")
	}
	return "", false, fmt.Errorf("unknown annotation %q (known: Up, Down, StatementBegin, StatementEnd, NO TRANSACTION)", strings.TrimSpace(t))
}
