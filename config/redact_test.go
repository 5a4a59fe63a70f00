package config_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fxpg/fxpg/config"
)

// awkward are passwords that parsers split differently, each as written
// unencoded in a URL.
var awkward = []string{"P@ssw0rd!2024", "pa/ss:w@rd", "per%cent", "sp ace s", "üñí©ødé", "a?b#c&d=e", "@@@@", "::::"}

func TestRedactURLHidesWhatAnyParserCallsAPassword(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "",
		"postgres://app:s3cret@db/app": "postgres://xxxxx@db/app",
		"postgres://app@db/app":        "postgres://xxxxx@db/app",
		"postgres://app:P@ssw0rd!2024@127.0.0.1/app":  "postgres://xxxxx@127.0.0.1/app",
		"postgres://db/app?password=s3cret&sslmode=x": "postgres://db/app?password=xxxxx",
		"postgres://db/app?sslpassword=k3y":           "postgres://db/app?sslpassword=xxxxx",
		"postgres://db/app?sslmode=disable":           "postgres://db/app?sslmode=disable",
		"not a url":                                   "(not a URL, not shown)",
	} {
		if got := config.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every way of printing or encoding a config.DB hides its passwords
// (issue 10, item 3: JSON and zap.Reflect showed them).
func TestEveryEncodingOfDBHidesPasswords(t *testing.T) {
	for _, password := range awkward {
		db := config.DB{
			URL:       "postgres://app:" + password + "@pooler:6432/app",
			DirectURL: "postgres://app:" + password + "@primary:5432/app",
			ReadURL:   "postgres://app@replica:5432/app?password=" + password,
		}
		core, logs := observer.New(zap.DebugLevel)
		log := zap.New(core)
		log.Info("reflect", zap.Reflect("db", db))
		log.Info("any", zap.Any("db", db))
		log.Info("object", zap.Object("db", db))
		log.Info("stringer", zap.Stringer("db", db))
		js, err := json.Marshal(db)
		if err != nil {
			t.Fatal(err)
		}
		nested, err := json.Marshal(struct{ DB config.DB }{db})
		if err != nil {
			t.Fatal(err)
		}
		shown := map[string]string{
			"%v": fmt.Sprintf("%v", db), "%+v": fmt.Sprintf("%+v", db), "%#v": fmt.Sprintf("%#v", db),
			"%s":         fmt.Sprintf("[%s]", db),
			"pointer %v": fmt.Sprintf("%v", &db), "json": string(js), "nested json": string(nested),
		}
		for _, e := range logs.All() {
			var b strings.Builder
			for k, v := range e.ContextMap() {
				fmt.Fprintf(&b, "%s=%v ", k, v)
			}
			shown["zap "+e.Message] = b.String()
		}
		for how, text := range shown {
			if strings.Contains(text, password) || !strings.Contains(text, "pooler:6432") {
				t.Errorf("%s of a DB with password %q: %s", how, password, text)
			}
		}
	}
}
