package migrate_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxpg/fxpg/dbmodule/migrate"
)

func TestCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"00001_a.sql", "00007_b.sql", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path, err := migrate.Create(dir, "Add Order Notes!")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "00008_add_order_notes.sql" {
		t.Errorf("Create made %s, want 00008_add_order_notes.sql", filepath.Base(path))
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "-- +goose Up") || !strings.Contains(string(b), "-- +goose Down") {
		t.Errorf("new migration lacks goose annotations:\n%s", b)
	}
	if _, err := migrate.Create(dir, "!!!"); err == nil {
		t.Error("Create with an empty name succeeded")
	}
	if _, err := migrate.Create(filepath.Join(dir, "missing"), "x"); err == nil {
		t.Error("Create in a missing directory succeeded")
	}
}

// What Create writes is a migration that parses, and that applies and
// rolls back as it is.
func TestCreatedMigrationRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := migrate.Create(dir, "empty"); err != nil {
		t.Fatal(err)
	}
	m := newMigrator(t, pg.Database(t), os.DirFS(dir))
	if applied, err := m.Up(context.Background()); err != nil || len(applied) != 1 || applied[0].File != "00001_empty.sql" {
		t.Fatalf("Up = %+v, %v", applied, err)
	}
	if _, err := m.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
}
