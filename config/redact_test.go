package config_test

import (
	"strings"
	"testing"

	"github.com/fxpg/fxpg/config"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                       "",
		"postgres://app:" + password + "@db/app": "postgres://app:xxxxx@db/app",
		"postgres://app@db/app":                  "postgres://app@db/app",
		"postgres://db/app?password=" + password + "&sslmode=require": "postgres://db/app?password=xxxxx&sslmode=require",
		"postgres://db/app?sslpassword=" + password:                   "postgres://db/app?sslpassword=xxxxx",
		"postgres://app:" + password + "%zz@db/app":                   "(invalid URL, not shown)",
	} {
		if got := config.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactSecrets(t *testing.T) {
	raw := "postgres://app:p%40ss-" + password + "@db/app?sslpassword=key-" + password
	text := "cannot use " + raw + ": auth failed for p@ss-" + password + " and p%40ss-" + password + ", key-" + password
	got := config.RedactSecrets(text, raw)
	if strings.Contains(got, password) {
		t.Errorf("RedactSecrets left a password: %s", got)
	}
	if !strings.Contains(got, "auth failed for") {
		t.Errorf("RedactSecrets removed more than secrets: %s", got)
	}
	// A URL that does not parse still has its password found where it usually is.
	broken := "postgres://app:" + password + "/x@db/app"
	if got := config.RedactSecrets("bad "+broken+" and "+password, broken); strings.Contains(got, password) {
		t.Errorf("RedactSecrets on an unparsable URL left the password: %s", got)
	}
}
