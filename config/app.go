package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
)

// Defaults of the fields of [App].
const (
	DefaultAppEnv   = "production"
	DefaultLogLevel = "info"
	DefaultHTTPAddr = ":8080"
)

// App holds the settings of the service around the database.
type App struct {
	// Env is "development" (console logs, .env loading) or "production"
	// (JSON logs). Default production, so a forgotten variable in a
	// deployment never turns on development behaviour.
	Env string `env:"APP_ENV"`
	// LogLevel is debug, info, warn or error. Default info. At debug, every
	// query is logged.
	LogLevel string `env:"LOG_LEVEL"`
	// HTTPAddr is the listen address of the HTTP server. Default :8080.
	HTTPAddr string `env:"HTTP_ADDR"`
}

// ParseApp reads the service settings from environ and validates them. It
// never reads the process environment; a nil map is an empty environment.
func ParseApp(environ map[string]string) (App, error) {
	a, err := parseEnv[App](environ)
	var p problems
	p.add(err)
	a = a.WithDefaults()
	p.add(a.validate())
	if err := p.err(); err != nil {
		return App{}, fmt.Errorf("app config: %w", err)
	}
	return a, nil
}

// LoadApp is ParseApp over the process environment.
func LoadApp() (App, error) { return ParseApp(Environ()) }

// WithDefaults returns a with every empty field set to its default.
func (a App) WithDefaults() App {
	setDefault(&a.Env, DefaultAppEnv)
	setDefault(&a.LogLevel, DefaultLogLevel)
	setDefault(&a.HTTPAddr, DefaultHTTPAddr)
	return a
}

// Development reports whether the service runs in development mode.
func (a App) Development() bool { return a.WithDefaults().Env == "development" }

// Validate reports every setting that cannot be used, each as a *VarError.
func (a App) Validate() error {
	if err := a.validate(); err != nil {
		return fmt.Errorf("app config: %w", err)
	}
	return nil
}

func (a App) validate() error {
	a = a.WithDefaults()
	var errs []error
	if !slices.Contains([]string{"development", "production"}, a.Env) {
		errs = append(errs, &VarError{Var: "APP_ENV", Err: fmt.Errorf("%s is not development or production", quote(a.Env))})
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, a.LogLevel) {
		errs = append(errs, &VarError{Var: "LOG_LEVEL", Err: fmt.Errorf("%s is not debug, info, warn or error", quote(a.LogLevel))})
	}
	if _, _, err := net.SplitHostPort(a.HTTPAddr); err != nil {
		errs = append(errs, &VarError{Var: "HTTP_ADDR", Err: fmt.Errorf("%s is not host:port (e.g. :8080 or 127.0.0.1:8080)", quote(a.HTTPAddr))})
	}
	return errors.Join(errs...)
}
