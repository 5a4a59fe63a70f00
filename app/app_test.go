package app_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fxpg/fxpg/app"
	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// pg is a PostgreSQL server for the tests that start the service, started
// on first use; Main also checks that no goroutine outlives the tests.
var pg dbtest.Server

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

func TestNewLogger(t *testing.T) {
	for _, tt := range []struct {
		cfg   config.App
		debug bool
	}{
		{config.App{}, false},
		{config.App{Env: "development"}, false},
		{config.App{Env: "production", LogLevel: "debug"}, true},
		{config.App{Env: "development", LogLevel: "warn"}, false},
	} {
		lc := fxtest.NewLifecycle(t)
		log, err := app.NewLogger(tt.cfg, lc)
		if err != nil {
			t.Fatal(err)
		}
		if got := log.Core().Enabled(zapcore.DebugLevel); got != tt.debug {
			t.Errorf("%+v: debug enabled = %v", tt.cfg, got)
		}
		if tt.cfg.LogLevel == "warn" && log.Core().Enabled(zapcore.InfoLevel) {
			t.Errorf("%+v: info enabled", tt.cfg)
		}
		lc.RequireStart().RequireStop()
	}
}

func TestModuleComposes(t *testing.T) {
	// The graph resolves with every part replaced that would touch the
	// outside world; starting it is lifecycle_test.go's job.
	if err := fx.ValidateApp(app.Module, fx.Replace(config.DB{URL: "postgres://localhost/db"}), fx.Replace(zap.NewNop())); err != nil {
		t.Fatal(err)
	}
}

func TestTracingIsRefusedClearly(t *testing.T) {
	for value, want := range map[string]string{"true": "dbtrace.Module", "otel": `"otel" is not a boolean`} {
		t.Setenv("DB_TRACING", value)
		a := app.New(fx.Replace(config.DB{URL: "postgres://localhost/db"}, config.App{HTTPAddr: "127.0.0.1:0"}, zap.NewNop()), fx.NopLogger)
		err := a.Start(context.Background())
		var ve *config.VarError
		if !errors.As(err, &ve) || ve.Var != "DB_TRACING" || !strings.Contains(err.Error(), want) {
			t.Errorf("app with DB_TRACING=%s = %v, want an error naming the variable and saying %q", value, err, want)
		}
	}
}
