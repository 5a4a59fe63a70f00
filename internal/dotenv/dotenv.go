// Package dotenv loads a development .env file into the process environment
// for the binaries. Libraries never read one: they take settings as maps.
//
// The format is the common one: KEY=value lines, an optional "export "
// prefix, # comments, and values in single quotes (literal) or double quotes
// (with \n, \t, \", \\ escapes), which may span lines. Nothing is expanded.
// Errors give the file and the line, never the file's content, which holds
// passwords.
package dotenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Load sets, in the process environment, the variables of the file at path
// that are not set already: real variables always win. It does nothing when
// APP_ENV=production is set, as a file left on a production host must not
// change its settings, nor when the file does not exist.
func Load(path string) error {
	if os.Getenv("APP_ENV") == "production" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	vars, err := Parse(string(b))
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	for _, v := range vars {
		if _, set := os.LookupEnv(v.Name); set {
			continue
		}
		if err := os.Setenv(v.Name, v.Value); err != nil {
			return fmt.Errorf("load %s: set %s: %w", path, v.Name, err)
		}
	}
	return nil
}

// A Var is one assignment of a file.
type Var struct {
	Name, Value string
	Line        int // where the assignment starts
}

// A SyntaxError says where a file cannot be read. Its message names the
// line and, when the line starts with a valid name, the variable, and never
// quotes the file.
type SyntaxError struct {
	Line   int
	Name   string // "" when the line has no valid name
	Reason string
}

func (e *SyntaxError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("line %d (%s): %s", e.Line, e.Name, e.Reason)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// Parse reads the assignments of a file's content, in order.
func Parse(content string) ([]Var, error) {
	var vars []Var
	lines := strings.Split(strings.ReplaceAll(content, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !validName(name) {
			return nil, &SyntaxError{Line: lineNo, Reason: "expected NAME=value, with a name of letters, digits and underscores"}
		}
		if !ok {
			return nil, &SyntaxError{Line: lineNo, Name: name, Reason: "has no ="}
		}
		value = strings.TrimLeft(value, " \t")
		if value == "" || (value[0] != '"' && value[0] != '\'') {
			// Unquoted: a # after white space starts a comment.
			if j := strings.Index(value, " #"); j >= 0 {
				value = value[:j]
			}
			vars = append(vars, Var{Name: name, Value: strings.TrimSpace(value), Line: lineNo})
			continue
		}
		quote := value[0]
		text := value[1:]
		// A quoted value may span lines, up to its closing quote.
		var b strings.Builder
		for {
			end, closed := closingQuote(text, quote)
			if closed {
				b.WriteString(text[:end])
				if rest := strings.TrimSpace(text[end+1:]); rest != "" && !strings.HasPrefix(rest, "#") {
					return nil, &SyntaxError{Line: i + 1, Name: name, Reason: "has text after the closing quote"}
				}
				break
			}
			b.WriteString(text)
			if i+1 >= len(lines) {
				return nil, &SyntaxError{Line: lineNo, Name: name, Reason: "has a quoted value that is never closed"}
			}
			b.WriteByte('\n')
			i++
			text = lines[i]
		}
		value = b.String()
		if quote == '"' {
			value = unescape(value)
		}
		vars = append(vars, Var{Name: name, Value: value, Line: lineNo})
	}
	return vars, nil
}

// closingQuote finds the quote that closes a value in text; in double
// quotes a backslash escapes the next character.
func closingQuote(text string, quote byte) (int, bool) {
	for j := 0; j < len(text); j++ {
		switch {
		case quote == '"' && text[j] == '\\':
			j++
		case text[j] == quote:
			return j, true
		}
	}
	return 0, false
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for j := 0; j < len(s); j++ {
		if s[j] != '\\' || j+1 == len(s) {
			b.WriteByte(s[j])
			continue
		}
		j++
		switch s[j] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		default: // \" \\ \$ and anything else: the character itself
			b.WriteByte(s[j])
		}
	}
	return b.String()
}

func validName(name string) bool {
	if name == "" {
		return false
	}
	for j, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && j > 0:
		case r == '.' && j > 0:
		default:
			return false
		}
	}
	return true
}
