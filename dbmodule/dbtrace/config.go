package dbtrace

import (
	"fmt"

	"github.com/fxpg/fxpg/config"
)

// Config holds the tracing settings, which belong to this package rather
// than to config.DB: only an app that traces reads them.
type Config struct {
	// Enabled adds OpenTelemetry spans for statements (DB_TRACING); default
	// false. An app that sets it must provide a trace.TracerProvider.
	Enabled bool `env:"DB_TRACING"`
	// QueryArgs records argument values in spans (DB_TRACE_QUERY_ARGS),
	// which may hold personal data or secrets; default false. Spans always
	// carry the SQL.
	QueryArgs bool `env:"DB_TRACE_QUERY_ARGS"`
}

// ParseConfig reads Config from environ, a map of variable names to values.
// It never reads the process environment; a nil map is an empty
// environment. Its errors are config.VarErrors naming the variables at
// fault.
func ParseConfig(environ map[string]string) (Config, error) {
	c, err := config.Parse[Config](environ)
	if err != nil {
		return Config{}, fmt.Errorf("tracing config: %w", err)
	}
	return c, nil
}

// LoadConfig is ParseConfig over the process environment.
func LoadConfig() (Config, error) { return ParseConfig(config.Environ()) }
