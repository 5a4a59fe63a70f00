package migrate

import (
	"errors"
	"strings"
	"testing"
)

func never(int) bool { return false }

func sqls(stmts []statement) []string {
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = s.sql
	}
	return out
}

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		name string
		text string
		want []string
	}{
		{"plain", "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n", []string{"CREATE TABLE a (id int);", "CREATE TABLE b (id int);"}},
		{"last without a semicolon", "SELECT 1;\nSELECT 2\n\n", []string{"SELECT 1;", "SELECT 2"}},
		{"comments only", "-- nothing; here\n/* nor; here */\n", nil},
		{"empty statements", ";;\nSELECT 1;;", []string{"SELECT 1;"}},
		{"dollar quotes", "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\nSELECT 2;",
			[]string{"CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;", "SELECT 2;"}},
		{"tagged dollar quotes nest $$", "DO $body$ BEGIN EXECUTE $$SELECT 1; SELECT 2$$; END $body$;\nSELECT 3;",
			[]string{"DO $body$ BEGIN EXECUTE $$SELECT 1; SELECT 2$$; END $body$;", "SELECT 3;"}},
		{"a tag with digits", "SELECT $a1$;$a1$;", []string{"SELECT $a1$;$a1$;"}},
		{"parameters are not tags", "CREATE FUNCTION g(int) RETURNS int LANGUAGE sql AS 'SELECT $1 + 1;';\nSELECT 4;",
			[]string{"CREATE FUNCTION g(int) RETURNS int LANGUAGE sql AS 'SELECT $1 + 1;';", "SELECT 4;"}},
		{"a $ inside an identifier", "SELECT a$b$c;\nSELECT 5;", []string{"SELECT a$b$c;", "SELECT 5;"}},
		{"strings", "INSERT INTO t VALUES ('a;b', 'it''s; ok');\nSELECT 6;", []string{"INSERT INTO t VALUES ('a;b', 'it''s; ok');", "SELECT 6;"}},
		{"backslashes end nothing in standard strings", `SELECT 'a\';` + "\nSELECT 7;", []string{`SELECT 'a\';`, "SELECT 7;"}},
		{"escape strings", `SELECT E'it\'s; ok', e'\\';` + "\nSELECT 8;", []string{`SELECT E'it\'s; ok', e'\\';`, "SELECT 8;"}},
		{"an identifier ending in e is no escape string", `SELECT some'a\';` + "\nSELECT 9;", []string{`SELECT some'a\';`, "SELECT 9;"}},
		{"quoted identifiers", `CREATE TABLE "a;""b" (id int);` + "\nSELECT 10;", []string{`CREATE TABLE "a;""b" (id int);`, "SELECT 10;"}},
		{"line comments", "SELECT 1 -- not the end;\n, 2;", []string{"SELECT 1 -- not the end;\n, 2;"}},
		{"nested block comments", "SELECT /* a /* b; */ c; */ 1;\nSELECT 11;", []string{"SELECT /* a /* b; */ c; */ 1;", "SELECT 11;"}},
		{"a dash or slash alone", "SELECT 4-1/2;", []string{"SELECT 4-1/2;"}},
		{"unicode", "SELECT 'ü;é', \"ñ;\" FROM tëst;", []string{"SELECT 'ü;é', \"ñ;\" FROM tëst;"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := split(tt.text, 1, never)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(sqls(got), "|") != strings.Join(tt.want, "|") {
				t.Errorf("split(%q)\n got %q\nwant %q", tt.text, sqls(got), tt.want)
			}
		})
	}
}

func TestSplitLines(t *testing.T) {
	text := "-- header\nSELECT 1;\n\n/* two\nlines */ SELECT $$\n;\n$$;\nSELECT 'a\nb'; SELECT 3;"
	got, err := split(text, 10, never)
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, s := range got {
		lines = append(lines, s.line)
	}
	if want := []int{11, 14, 17, 18}; len(lines) != len(want) || lines[0] != want[0] || lines[1] != want[1] || lines[2] != want[2] || lines[3] != want[3] {
		t.Errorf("statement lines = %v, want %v", lines, want)
	}
}

func TestSplitUnclosed(t *testing.T) {
	for _, tt := range []struct {
		text string
		line int
		want string
	}{
		{"SELECT 1;\nSELECT 'abc;\n", 2, "string is not closed"},
		{"SELECT E'abc\\';\n", 1, "string is not closed"},
		{"SELECT 1;\n\nCREATE TABLE \"x (id int);", 3, "quoted identifier is not closed"},
		{"SELECT 1;\nCREATE FUNCTION f() AS $fn$\nBEGIN\n$$;", 2, "$fn$ is not closed"},
		{"SELECT /* /* */ 1;", 1, "comment is not closed"},
	} {
		_, err := split(tt.text, 1, never)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != tt.line || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("split(%q) = %v; want line %d: %s", tt.text, err, tt.line, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	const file = `-- A migration with everything.
-- +goose Up
CREATE TABLE t (id int);
-- +goose StatementBegin
CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql
-- +goose StatementEnd
CREATE TABLE u (id int);

-- +goose Down
DROP TABLE u;
DROP FUNCTION f;
DROP TABLE t;
`
	p, err := parse("00001_all.sql", file)
	if err != nil {
		t.Fatal(err)
	}
	if p.noTx {
		t.Error("noTx without NO TRANSACTION")
	}
	// What a transaction sends: the file's lines, the block ended by a
	// semicolon, so that CREATE TABLE u is a statement of its own.
	wantUp := "CREATE TABLE t (id int);\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql\n" +
		"; -- +goose StatementEnd\nCREATE TABLE u (id int);\n"
	if p.up.text != wantUp || p.up.line != 3 {
		t.Errorf("up = %q at line %d, want %q at 3", p.up.text, p.up.line, wantUp)
	}
	if got := sqls(p.up.stmts); len(got) != 3 || got[1] != "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql\n;" ||
		p.up.stmts[1].line != 5 || p.up.stmts[2].line != 7 {
		t.Errorf("up statements = %q", got)
	}
	if got := sqls(p.down.stmts); len(got) != 3 || p.down.line != 10 || got[0] != "DROP TABLE u;" {
		t.Errorf("down statements = %q at line %d", got, p.down.line)
	}
}

func TestParseBlocksKeepSemicolons(t *testing.T) {
	p, err := parse("00001_block.sql", "-- +goose NO TRANSACTION\n-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\nSELECT 2;\n-- +goose StatementEnd\nSELECT 3;\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := sqls(p.up.stmts); !p.noTx || len(got) != 2 || got[0] != "SELECT 1;\nSELECT 2;\n;" || got[1] != "SELECT 3;" {
		t.Errorf("noTx %v, statements %q; want the block as one statement, as goose sends it", p.noTx, got)
	}
	if !p.down.empty() {
		t.Error("a file without Down has a Down section")
	}
}

func TestParseCRLF(t *testing.T) {
	p, err := parse("00001_crlf.sql", "-- +goose Up\r\nSELECT 1;\r\n-- +goose Down\r\nSELECT 2;\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := sqls(p.up.stmts); len(got) != 1 || got[0] != "SELECT 1;" || len(p.down.stmts) != 1 {
		t.Errorf("up %q, down %q", got, sqls(p.down.stmts))
	}
}

func TestParseByteOrderMark(t *testing.T) {
	if _, err := parse("00001_bom.sql", "\ufeff-- +goose Up\nSELECT 1;\n"); err != nil {
		t.Error(err)
	}
}

func TestParseEmptySections(t *testing.T) {
	// The file Create writes.
	p, err := parse("00001_new.sql", "-- +goose Up\n-- +goose StatementBegin\n\n-- +goose StatementEnd\n\n-- +goose Down\n-- +goose StatementBegin\n\n-- +goose StatementEnd\n")
	if err != nil {
		t.Fatal(err)
	}
	if !p.up.empty() || !p.down.empty() {
		t.Errorf("up %q, down %q; want both empty", sqls(p.up.stmts), sqls(p.down.stmts))
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		line       int
		want       string
	}{
		{"no Up", "SELECT 1;\n", 1, "SQL before"},
		{"nothing", "-- just a comment\n", 0, "no -- +goose Up"},
		{"empty file", "", 0, "no -- +goose Up"},
		{"second Up", "-- +goose Up\nSELECT 1;\n-- +goose Up\n", 3, "second -- +goose Up (the first is on line 1)"},
		{"second Down", "-- +goose Up\n-- +goose Down\n-- +goose Down\n", 3, "second -- +goose Down"},
		{"Down first", "-- +goose Down\n-- +goose Up\n", 1, "Down before -- +goose Up"},
		{"Begin before Up", "-- +goose StatementBegin\n", 1, "StatementBegin before"},
		{"nested Begin", "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementBegin\n", 3, "inside the StatementBegin of line 2"},
		{"End without Begin", "-- +goose Up\nSELECT 1;\n-- +goose StatementEnd\n", 3, "without a StatementBegin"},
		{"Begin without End", "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n", 2, "without a StatementEnd"},
		{"Down inside a block", "-- +goose Up\n-- +goose StatementBegin\n-- +goose Down\n", 3, "Down inside the StatementBegin of line 2"},
		{"unknown annotation", "-- +goose Up\n-- +goose Sideways\n", 2, `unknown annotation "-- +goose Sideways"`},
		{"envsub", "-- +goose ENVSUB ON\n-- +goose Up\n", 1, "ENVSUB is not supported"},
		{"unclosed dollar quote", "-- +goose Up\nSELECT 1;\n\nDO $$ BEGIN\n-- +goose Down\nSELECT 1;\n", 4, "$$ is not closed"},
		{"unclosed in Down", "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 'x;\n", 4, "string is not closed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse("00007_bad.sql", tt.file)
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "00007_bad.sql" || pe.Line != tt.line || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parse = %v; want 00007_bad.sql line %d: %s", err, tt.line, tt.want)
			}
			if tt.line > 0 && !strings.HasPrefix(err.Error(), "00007_bad.sql:") {
				t.Errorf("error %q does not start with file:line", err)
			}
		})
	}
}

func TestAnnotationsAreCaseInsensitive(t *testing.T) {
	p, err := parse("00001_case.sql", "--+goose up\n--  +goose  no   transaction\nSELECT 1;\n-- +goose DOWN\n")
	if err != nil || !p.noTx || len(p.up.stmts) != 1 {
		t.Errorf("parse = %+v, %v", p, err)
	}
}

func TestNewlinesBefore(t *testing.T) {
	s := "ü\né\nx"
	for pos, want := range map[int]int{1: 0, 2: 0, 3: 1, 5: 2, 99: 2} {
		if got := newlinesBefore(s, pos); got != want {
			t.Errorf("newlinesBefore(%q, %d) = %d, want %d", s, pos, got, want)
		}
	}
}

// Whatever the input, split does not panic, and its statements are pieces
// of the text, in order, on lines in order.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"SELECT 1;", "DO $$ ; $$;", "'a;'';'", `E'\'';`, `"x;"`, "/* /* */ */;", "-- ;\n;", "$a$ $a$;", "a$b$;", "$1;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		stmts, err := split(text, 1, never)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Line > strings.Count(text, "\n")+1 {
				t.Fatalf("split(%q): error %v has no line in the text", text, err)
			}
			return
		}
		at, line := 0, 1
		for i, s := range stmts {
			j := strings.Index(text[at:], s.sql)
			if s.sql == "" || j < 0 {
				t.Fatalf("split(%q): statement %q is not a later piece of the text", text, s.sql)
			}
			if i < len(stmts)-1 && !strings.HasSuffix(s.sql, ";") {
				t.Fatalf("split(%q): statement %q does not end at a semicolon", text, s.sql)
			}
			if s.line < line || s.line > strings.Count(text, "\n")+1 {
				t.Fatalf("split(%q): statement %q on line %d, after line %d", text, s.sql, s.line, line)
			}
			at, line = at+j+len(s.sql), s.line
		}
	})
}
