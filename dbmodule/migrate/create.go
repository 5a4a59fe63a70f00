package migrate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Create adds an empty SQL migration named name to dir, numbered one past
// the highest version there, and returns its path.
func Create(dir, name string) (string, error) {
	slug := strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(name), "_"), "_")
	if slug == "" {
		return "", errors.New("create migration: the name needs letters or digits")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("create migration: %w", err)
	}
	migrationFile := regexp.MustCompile(`^(\d+)_.*\.sql$`) // goose's NNNNN_name.sql
	var last int64
	for _, e := range entries {
		if m := migrationFile.FindStringSubmatch(e.Name()); m != nil {
			if v, err := strconv.ParseInt(m[1], 10, 64); err == nil && v > last {
				last = v
			}
		}
	}
	path := filepath.Join(dir, fmt.Sprintf("%05d_%s.sql", last+1, slug))
	const template = "-- +goose Up\n-- +goose StatementBegin\n\n-- +goose StatementEnd\n\n-- +goose Down\n-- +goose StatementBegin\n\n-- +goose StatementEnd\n"
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("create migration: %w", err)
	}
	if _, err := f.WriteString(template); err != nil {
		f.Close()
		return "", fmt.Errorf("create migration: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("create migration: %w", err)
	}
	return path, nil
}
