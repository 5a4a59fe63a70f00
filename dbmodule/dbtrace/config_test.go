package dbtrace_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/fx"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtrace"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		environ map[string]string
		want    dbtrace.Config
	}{
		{nil, dbtrace.Config{}},
		{map[string]string{"DB_TRACING": "true"}, dbtrace.Config{Enabled: true}},
		{map[string]string{"DB_TRACING": "true", "DB_TRACE_QUERY_ARGS": "true"}, dbtrace.Config{Enabled: true, QueryArgs: true}},
		{map[string]string{"DB_TRACING": "false", "DB_TRACE_QUERY_ARGS": ""}, dbtrace.Config{}},
	} {
		got, err := dbtrace.ParseConfig(tt.environ)
		if err != nil || got != tt.want {
			t.Errorf("ParseConfig(%v) = %+v, %v; want %+v", tt.environ, got, err, tt.want)
		}
	}
}

func TestParseConfigNamesTheBadVariables(t *testing.T) {
	t.Parallel()
	_, err := dbtrace.ParseConfig(map[string]string{"DB_TRACING": "otel", "DB_TRACE_QUERY_ARGS": "some"})
	for _, v := range []string{"DB_TRACING", "DB_TRACE_QUERY_ARGS"} {
		if !strings.Contains(fmt.Sprint(err), v) {
			t.Errorf("error %v does not name %s", err, v)
		}
	}
	var ve *config.VarError
	if !errors.As(err, &ve) {
		t.Errorf("error %v is no config.VarError", err)
	}
}

// Module reads DB_TRACING from the process environment, not from config.DB.
func TestModuleReadsTheEnvironment(t *testing.T) {
	t.Setenv("DB_TRACING", "true")
	app := fx.New(dbmodule.Module, dbtrace.Module, pg.Module(t), fx.NopLogger, fx.Invoke(func(dbmodule.Querier) {}))
	var ve *config.VarError
	if err := app.Err(); !errors.As(err, &ve) || ve.Var != "DB_TRACING" {
		t.Errorf("DB_TRACING=true in the environment, no provider: %v; want the refusal naming DB_TRACING", err)
	}
	t.Setenv("DB_TRACING", "maybe")
	app = fx.New(dbmodule.Module, dbtrace.Module, pg.Module(t), fx.NopLogger, fx.Invoke(func(dbmodule.Querier) {}))
	if err := app.Err(); !errors.As(err, &ve) || ve.Var != "DB_TRACING" || !strings.Contains(err.Error(), `"maybe"`) {
		t.Errorf("DB_TRACING=maybe: %v; want an error naming DB_TRACING and its value", err)
	}
}
