package migrate

import (
	"fmt"

	"github.com/fxpg/fxpg/config"
)

// Config holds the migrate module's own settings, read from the
// environment like config.DB's.
type Config struct {
	// OnStart makes an app that includes Module apply pending migrations
	// when it starts, before anything uses the pool; default false.
	OnStart bool `env:"DB_MIGRATE_ON_START"`
}

// ParseConfig reads Config from environ, a map of variable names to values;
// a nil map is an empty environment, never the process's. Errors name the
// variable at fault (config.VarError).
func ParseConfig(environ map[string]string) (Config, error) {
	c, err := config.Parse[Config](environ)
	if err != nil {
		return Config{}, fmt.Errorf("migrate config: %w", err)
	}
	return c, nil
}

// LoadConfig is ParseConfig over the process environment.
func LoadConfig() (Config, error) { return ParseConfig(config.Environ()) }
