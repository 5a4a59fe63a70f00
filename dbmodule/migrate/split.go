package migrate

import (
	"errors"
	"fmt"
	"strings"
)

// A statement is one SQL statement of a section and the file line it starts on.
type statement struct {
	sql  string
	line int
}

// split cuts text, which starts on file line first, into statements at the
// semicolons that PostgreSQL's own lexer would see: not those inside quoted
// strings, quoted identifiers, dollar-quoted bodies or comments. A semicolon
// on a line for which keep is true ends nothing (goose's StatementBegin/End
// blocks). Comments and blank space between statements are dropped; a
// construct left open is an error naming the line where it opened.
func split(text string, first int, keep func(line int) bool) ([]statement, error) {
	var (
		stmts     []statement
		start     = -1 // offset of the current statement's first token
		startLine int
		line      = first
	)
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && strings.HasPrefix(text[i:], "--"):
			if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
				i += j // the newline is counted above
			} else {
				i = len(text)
			}
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			end, lines, err := blockComment(text, i, line)
			if err != nil {
				return nil, err
			}
			i, line = end, line+lines
		case c == ';':
			if start >= 0 && !keep(line) {
				stmts = append(stmts, statement{sql: text[start : i+1], line: startLine})
				start = -1
			}
			i++
		default:
			if start < 0 {
				start, startLine = i, line
			}
			end, lines, err := token(text, i, line)
			if err != nil {
				return nil, err
			}
			i, line = end, line+lines
		}
	}
	if start >= 0 {
		// The last statement may omit its semicolon.
		stmts = append(stmts, statement{sql: strings.TrimRight(text[start:], " \t\r\n\f\v"), line: startLine})
	}
	return stmts, nil
}

// token returns the end of the token at text[i], on line, and the newlines
// in it. Only quoted tokens may span lines or fail.
func token(text string, i, line int) (end, lines int, err error) {
	c := text[i]
	switch {
	case c == '\'':
		return quoted(text, i, i+1, '\'', false, line, "string")
	case (c == 'E' || c == 'e') && i+1 < len(text) && text[i+1] == '\'':
		return quoted(text, i, i+2, '\'', true, line, "string")
	case c == '"':
		return quoted(text, i, i+1, '"', false, line, "quoted identifier")
	case c == '$':
		if tag, ok := dollarTag(text[i:]); ok {
			j := strings.Index(text[i+len(tag):], tag)
			if j < 0 {
				return 0, 0, &ParseError{Line: line, Err: fmt.Errorf("dollar-quoted string %s is not closed", tag)}
			}
			end = i + len(tag) + j + len(tag)
			return end, strings.Count(text[i:end], "\n"), nil
		}
		return i + 1, 0, nil // a parameter ($1) or an operator
	case identStart(c):
		// A whole identifier or keyword, so that a $ inside one (a$b$) is
		// not taken for a dollar quote, as PostgreSQL does not.
		j := i + 1
		for j < len(text) && (identStart(text[j]) || isDigit(text[j]) || text[j] == '$') {
			j++
		}
		return j, 0, nil
	}
	return i + 1, 0, nil
}

// quoted returns the end of the quoted token opened at open whose body
// starts at body: quote doubled is a quote, and with backslashes (E'...')
// a backslash escapes the next byte.
func quoted(text string, open, body int, quote byte, backslashes bool, line int, what string) (end, lines int, err error) {
	for j := body; j < len(text); j++ {
		switch text[j] {
		case '\\':
			if backslashes {
				j++
			}
		case quote:
			if j+1 < len(text) && text[j+1] == quote {
				j++
				continue
			}
			return j + 1, strings.Count(text[open:j], "\n"), nil
		}
	}
	return 0, 0, &ParseError{Line: line, Err: fmt.Errorf("%s is not closed", what)}
}

// blockComment returns the end of the /* comment */ at text[i], which nests
// as PostgreSQL's do, and the newlines in it.
func blockComment(text string, i, line int) (end, lines int, err error) {
	depth := 0
	for j := i; j+1 < len(text); j++ {
		switch {
		case text[j] == '/' && text[j+1] == '*':
			depth++
			j++
		case text[j] == '*' && text[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1, strings.Count(text[i:j], "\n"), nil
			}
		}
	}
	return 0, 0, &ParseError{Line: line, Err: errors.New("/* comment is not closed")}
}

// dollarTag returns the delimiter ($$ or $tag$) that s starts with, if any.
// A tag is an identifier without $; $1 is a parameter, not a tag.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1], true
		case identStart(c), isDigit(c) && j > 1:
		default:
			return "", false
		}
	}
	return "", false
}

// identStart reports whether c can start an identifier; bytes of multibyte
// UTF-8 characters can, as in PostgreSQL.
func identStart(c byte) bool {
	return c == '_' || c >= 0x80 || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
