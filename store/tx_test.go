package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/store"
)

// store.New on InTx's Querier is how sqlc's queries join the transaction;
// the store.Querier the app is given stays outside it.
func TestTypedQueriesJoinInTx(t *testing.T) {
	t.Parallel()
	shop, tx := shop(t)
	ctx := context.Background()
	errUndo := errors.New("undo")
	var id int64
	err := tx.InTx(ctx, func(q dbmodule.Querier) error {
		s := store.New(q)
		c, err := s.CreateCustomer(ctx, store.CreateCustomerParams{Email: "eve@example.com", Name: "Eve"})
		if err != nil {
			return err
		}
		id = c.ID
		if got, err := s.GetCustomer(ctx, id); err != nil || got.Name != "Eve" {
			t.Errorf("inside the transaction GetCustomer = %+v, %v; want its own write", got, err)
		}
		if _, err := shop.GetCustomer(ctx, id); !errors.Is(err, pgx.ErrNoRows) {
			t.Errorf("outside the transaction GetCustomer = %v, want no rows before the commit", err)
		}
		return errUndo
	})
	if !errors.Is(err, errUndo) {
		t.Fatalf("InTx = %v", err)
	}
	if _, err := shop.GetCustomer(ctx, id); !errors.Is(err, pgx.ErrNoRows) {
		t.Errorf("after the rollback GetCustomer = %v, want no rows", err)
	}
}
