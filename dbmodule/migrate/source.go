package migrate

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// A migration is one file of migrations.
type migration struct {
	version int64
	file    string // its name, which is also its path in the file system
	parsed
}

// load reads and parses the migrations of fsys: the files at its root named
// like goose's, VERSION_NAME.sql with VERSION a positive integer (00001,
// or a timestamp), sorted by version. Other files are ignored, as goose
// ignores them.
func load(fsys fs.FS) ([]*migration, error) {
	if fsys == nil {
		return nil, errors.New("no file system of migrations (migrate.Files.FS is nil)")
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migration files: %w", err)
	}
	var migrations []*migration
	byVersion := map[int64]string{}
	for _, name := range names {
		version, ok := versionOf(name)
		if !ok {
			continue
		}
		if other, dup := byVersion[version]; dup {
			return nil, fmt.Errorf("migration files %s and %s have the same version, %d", other, name, version)
		}
		byVersion[version] = name
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration: %w", err)
		}
		p, err := parse(name, string(b))
		if err != nil {
			return nil, err
		}
		migrations = append(migrations, &migration{version: version, file: name, parsed: p})
	}
	slices.SortFunc(migrations, func(a, b *migration) int { return cmp.Compare(a.version, b.version) })
	return migrations, nil
}

// versionOf returns the version of a migration file named VERSION_NAME.sql.
func versionOf(name string) (int64, bool) {
	prefix, _, ok := strings.Cut(name, "_")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(prefix, 10, 64)
	return v, err == nil && v > 0
}
