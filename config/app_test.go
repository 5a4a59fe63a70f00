package config_test

import (
	"errors"
	"testing"

	"github.com/fxpg/fxpg/config"
)

func TestParseAppDefaults(t *testing.T) {
	a, err := config.ParseApp(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config.App{Env: "production", LogLevel: "info", HTTPAddr: ":8080"}
	if a != want || a.Development() {
		t.Errorf("ParseApp(nil) = %+v, want %+v in production", a, want)
	}
	a, err = config.ParseApp(map[string]string{"APP_ENV": "development", "LOG_LEVEL": "debug", "HTTP_ADDR": "127.0.0.1:0"})
	if err != nil || !a.Development() || a.LogLevel != "debug" || a.HTTPAddr != "127.0.0.1:0" {
		t.Errorf("ParseApp = %+v, %v", a, err)
	}
}

func TestParseAppBadValues(t *testing.T) {
	for variable, value := range map[string]string{
		"APP_ENV":   "staging",
		"LOG_LEVEL": "verbose",
		"HTTP_ADDR": "8080",
	} {
		_, err := config.ParseApp(map[string]string{variable: value})
		var ve *config.VarError
		if !errors.As(err, &ve) || ve.Var != variable {
			t.Errorf("%s=%q: error %v does not name the variable", variable, value, err)
		}
	}
}
