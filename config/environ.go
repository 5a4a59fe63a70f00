package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Environ returns the process environment as a map, the form the Parse
// functions take.
func Environ() map[string]string {
	vars := os.Environ()
	m := make(map[string]string, len(vars))
	for _, kv := range vars {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// Parse fills a T, a struct with `env` tags, from environ with caarlos0/env,
// as ParseDB does: errors are VarErrors naming the variables at fault, and
// a nil map is an empty environment, never the process's. It is for the
// settings of other packages, such as migrate.Config.
func Parse[T any](environ map[string]string) (T, error) { return parseEnv[T](environ) }

// parseEnv fills a T from environ with caarlos0/env and turns its errors, which
// name Go fields, into VarErrors that name variables.
func parseEnv[T any](environ map[string]string) (T, error) {
	if environ == nil {
		// A nil map makes caarlos0/env read the process environment; an explicit
		// map must never do that.
		environ = map[string]string{}
	}
	v, err := env.ParseAsWithOptions[T](env.Options{Environment: environ})
	if err == nil {
		return v, nil
	}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return v, fmt.Errorf("read environment: %w", err)
	}
	vars := envTags(reflect.TypeFor[T]())
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			errs = append(errs, fmt.Errorf("read environment: %w", e))
			continue
		}
		name := vars[pe.Name]
		errs = append(errs, &VarError{Var: name, Err: valueError(pe.Type, environ[name])})
	}
	return v, errors.Join(errs...)
}

// envTags maps each field name of struct type t to the variable in its env tag.
func envTags(t reflect.Type) map[string]string {
	m := make(map[string]string, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" {
			m[f.Name] = name
		}
	}
	return m
}

// valueError explains why value is not a valid t. It quotes the value, which is
// safe because only tuning variables have types that can fail to parse: URLs
// are strings.
func valueError(t reflect.Type, value string) error {
	q := quote(value)
	switch t {
	case reflect.TypeFor[time.Duration]():
		if _, err := strconv.ParseFloat(value, 64); err == nil {
			return fmt.Errorf("%s has no unit: write it as %ss or %sms", q, value, value)
		}
		return fmt.Errorf("%s is not a duration (examples: 500ms, 30s, 5m, 1h)", q)
	case reflect.TypeFor[bool]():
		return fmt.Errorf("%s is not a boolean (use true or false)", q)
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if _, err := strconv.ParseInt(value, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
			return fmt.Errorf("%s is out of range", q)
		}
		return fmt.Errorf("%s is not a whole number", q)
	}
	return fmt.Errorf("%s is not a valid %s", q, t)
}

// quote quotes a variable's value for an error message, cut short so that a
// pasted blob does not flood the log.
func quote(value string) string {
	const limit = 40
	if len(value) > limit {
		return strconv.Quote(value[:limit]) + "..."
	}
	return strconv.Quote(value)
}
