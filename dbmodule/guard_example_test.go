package dbmodule_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// With DB_ACQUIRE_TIMEOUT, a caller that finds every connection in use gives
// up after the timeout with an error that says so, while its own context is
// still live; an HTTP handler would answer 503.
func ExamplePoolExhaustedError() {
	ctx := context.Background()
	pool, err := dbmodule.Open(ctx, config.DB{URL: databaseURL(), MaxConns: 1, AcquireTimeout: 50 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dbmodule.Close(ctx, pool) //nolint:errcheck // example
	held, err := pool.Acquire(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer held.Release()

	_, err = pool.Exec(ctx, "SELECT 1")
	var exhausted *dbmodule.PoolExhaustedError
	if errors.Is(err, dbmodule.ErrPoolExhausted) && errors.As(err, &exhausted) {
		fmt.Printf("503: %d of %d connections in use\n", exhausted.InUse, exhausted.Max)
	}
	// Output: 503: 1 of 1 connections in use
}

// A PasswordProvider gives new connections a short-lived token; the module
// caches it until shortly before it expires.
func ExamplePasswordFunc() {
	tokens := dbmodule.PasswordFunc(func(ctx context.Context, t dbmodule.PasswordTarget) (string, time.Time, error) {
		// An RDS IAM token, say: signed for t.Host:t.Port and t.User, valid 15 minutes.
		return "token-for-" + t.User, time.Now().Add(15 * time.Minute), nil
	})
	guard, err := dbmodule.NewGuard(dbmodule.GuardParams{Config: config.DB{URL: "postgres://app@db.internal/app"}, Passwords: tokens})
	if err != nil {
		fmt.Println(err)
		return
	}
	// With fx: fx.Provide(dbmodule.AsPasswordProvider(newTokens)). Without:
	pc, err := dbmodule.ParseConfig(config.DB{URL: "postgres://app@db.internal/app"}, dbmodule.WithGuard(guard))
	fmt.Println(pc.BeforeConnect != nil, err)
	// Output: true <nil>
}
