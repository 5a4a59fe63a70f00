package dotenv_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxpg/fxpg/internal/dotenv"
)

const secret = "P@ss:w/rd%20 é"

func TestParse(t *testing.T) {
	content := "# comment\n" +
		"export A=1\n" +
		"B = two words # trailing comment\n" +
		"C='lit $X \\n'\n" +
		"D=\"esc \\\"q\\\" \\n end\"\n" +
		"E=\"multi\nline\"\n" +
		"F=\n" +
		"DATABASE_URL=postgres://app:" + secret + "@db/app\n"
	vars, err := dotenv.Parse(content)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range vars {
		got[v.Name] = v.Value
	}
	want := map[string]string{
		"A": "1", "B": "two words", "C": `lit $X \n`, "D": "esc \"q\" \n end", "E": "multi\nline", "F": "",
		"DATABASE_URL": "postgres://app:" + secret + "@db/app",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// A malformed file is reported by line, never by content: the content holds
// the password (issue 10, item 2).
func TestErrorsNameTheLineNotTheContent(t *testing.T) {
	for name, tc := range map[string]struct {
		content string
		line    int
	}{
		"unterminated quote":   {"A=1\nDATABASE_URL=\"postgres://app:" + secret + "@db/app\nB=2\n", 2},
		"bad line before it":   {"A=1\npostgres://app:" + secret + "@db/app\nDATABASE_URL=x\n", 2},
		"no equals sign":       {"DATABASE_URL\n", 1},
		"text after the quote": {"DATABASE_URL='postgres://app:" + secret + "@db' junk" + secret + "\n", 1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := dotenv.Parse(tc.content)
			var se *dotenv.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse = %v, want a *SyntaxError", err)
			}
			if se.Line != tc.line {
				t.Errorf("line %d, want %d (%v)", se.Line, tc.line, err)
			}
			for _, part := range []string{secret, "P@ss", "w/rd", "postgres://", "junk"} {
				if strings.Contains(err.Error(), part) {
					t.Errorf("error shows the file's content %q: %v", part, err)
				}
			}
		})
	}
}

func TestLoadKeepsRealVariablesAndNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	if err := os.WriteFile(path, []byte("DOTENV_TEST_A=from-file\nDOTENV_TEST_B=from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APP_ENV", "development")
	t.Setenv("DOTENV_TEST_A", "real")
	os.Unsetenv("DOTENV_TEST_B")
	t.Cleanup(func() { os.Unsetenv("DOTENV_TEST_B") })
	if err := dotenv.Load(path); err != nil {
		t.Fatal(err)
	}
	if a, b := os.Getenv("DOTENV_TEST_A"), os.Getenv("DOTENV_TEST_B"); a != "real" || b != "from-file" {
		t.Errorf("A=%q B=%q, want real, from-file", a, b)
	}
	if err := dotenv.Load(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte("DATABASE_URL='"+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := dotenv.Load(path)
	if err == nil || !strings.Contains(err.Error(), path+": line 1 (DATABASE_URL)") || strings.Contains(err.Error(), "P@ss") {
		t.Errorf("Load of a malformed file = %v, want the path and line, no content", err)
	}
}

func TestProductionIgnoresTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte("DOTENV_TEST_C=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APP_ENV", "production")
	if err := dotenv.Load(path); err != nil || os.Getenv("DOTENV_TEST_C") != "" {
		t.Errorf("production loaded the file: %v", err)
	}
}
