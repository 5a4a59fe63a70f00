package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/joho/godotenv"
)

// LoadDotEnv sets, in the process environment, the variables of the dotenv
// file at path that are not set already: real variables always win. It does
// nothing when APP_ENV=production is set, as a file left on a production host
// must not change its settings, nor when the file does not exist. It is for
// binaries in development; libraries and tests pass maps to the Parse
// functions instead.
func LoadDotEnv(path string) error {
	if os.Getenv("APP_ENV") == "production" {
		return nil
	}
	if err := godotenv.Load(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("load %s: %w", path, err)
	}
	return nil
}
