package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/store"
)

// pg clones every test's database from a template with the schema applied.
var pg = dbtest.Server{Migrations: store.Migrations()}

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// shop starts an app with the store on a database of the test's own.
func shop(t *testing.T) (store.Querier, *dbmodule.Transactor) {
	t.Helper()
	var (
		q  store.Querier
		tx *dbmodule.Transactor
	)
	app := fxtest.New(t, dbmodule.Module, store.Module, pg.Module(t), fx.Populate(&q, &tx))
	app.RequireStart()
	t.Cleanup(app.RequireStop)
	return q, tx
}

// placeOrder is what an app's service would do: take stock and record the
// order in one transaction, through the same typed queries.
func placeOrder(ctx context.Context, tx *dbmodule.Transactor, customer, product int64, quantity int32) (store.Order, error) {
	var order store.Order
	err := tx.InTx(ctx, func(q dbmodule.Querier) error {
		s := store.New(q)
		p, err := s.GetProduct(ctx, product)
		if err != nil {
			return err
		}
		if _, err := s.TakeStock(ctx, store.TakeStockParams{ID: product, Quantity: quantity}); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("only %d of %s left", p.Stock, p.SKU)
			}
			return err
		}
		order, err = s.CreateOrder(ctx, store.CreateOrderParams{
			CustomerID: customer, ProductID: product, Quantity: quantity, TotalCents: p.PriceCents * int64(quantity),
		})
		return err
	})
	return order, err
}

func TestTypedQueriesThroughTheApp(t *testing.T) {
	t.Parallel()
	q, tx := shop(t)
	ctx := context.Background()
	c, err := q.CreateCustomer(ctx, store.CreateCustomerParams{Email: "Ada@Example.com", Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Email != "ada@example.com" || c.CreatedAt.IsZero() {
		t.Errorf("customer = %+v", c)
	}
	if got, err := q.GetCustomerByEmail(ctx, "ADA@example.COM"); err != nil || got.ID != c.ID {
		t.Errorf("GetCustomerByEmail = %+v, %v", got, err)
	}
	p, err := q.CreateProduct(ctx, store.CreateProductParams{SKU: "KB-1", Name: "Keyboard", PriceCents: 4999, Stock: 3})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := placeOrder(ctx, tx, c.ID, p.ID, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := placeOrder(ctx, tx, c.ID, p.ID, 2); err == nil || err.Error() != "only 1 of KB-1 left" {
		t.Errorf("ordering more than the stock = %v", err)
	}
	orders, err := q.ListCustomerOrders(ctx, c.ID)
	if err != nil || len(orders) != 1 || orders[0].TotalCents != 9998 {
		t.Errorf("orders = %+v, %v; want the one that fitted the stock", orders, err)
	}
	if spend, err := q.CustomerSpend(ctx, c.ID); err != nil || spend != 9998 {
		t.Errorf("CustomerSpend = %d, %v", spend, err)
	}
	if left, _ := q.GetProduct(ctx, p.ID); left.Stock != 1 {
		t.Errorf("stock = %d, want 1: the failed order must not take any", left.Stock)
	}
}

func TestSchemaConstraints(t *testing.T) {
	t.Parallel()
	q, _ := shop(t)
	ctx := context.Background()
	code := func(err error) string {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return pgErr.Code
		}
		return fmt.Sprint(err)
	}
	c, err := q.CreateCustomer(ctx, store.CreateCustomerParams{Email: "bob@example.com", Name: "Bob"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.CreateCustomer(ctx, store.CreateCustomerParams{Email: "BOB@example.com", Name: "Bob again"}); code(err) != "23505" {
		t.Errorf("a second customer with the same email = %v, want a unique violation", err)
	}
	if _, err := q.CreateProduct(ctx, store.CreateProductParams{SKU: "X", Name: "X", PriceCents: -1}); code(err) != "23514" {
		t.Errorf("a negative price = %v, want a check violation", err)
	}
	if _, err := q.CreateOrder(ctx, store.CreateOrderParams{CustomerID: c.ID, ProductID: 999, Quantity: 1}); code(err) != "23503" {
		t.Errorf("an order of a missing product = %v, want a foreign key violation", err)
	}
	if products, err := q.ListProducts(ctx, 10); err != nil || products == nil || len(products) != 0 {
		t.Errorf("ListProducts on an empty table = %#v, %v; want an empty slice", products, err)
	}
}

// fakeStore answers GetCustomer without a database.
type fakeStore struct{ store.Querier }

func (fakeStore) GetCustomer(_ context.Context, id int64) (store.Customer, error) {
	return store.Customer{ID: id, Name: "Fake"}, nil
}

func TestQuerierCanBeFaked(t *testing.T) {
	t.Parallel()
	var q store.Querier
	app := fxtest.New(t, dbmodule.Module, store.Module,
		fx.Replace(fx.Annotate(fakeStore{}, fx.As(new(store.Querier)))),
		fx.Populate(&q))
	app.RequireStart()
	defer app.RequireStop()
	if c, err := q.GetCustomer(context.Background(), 7); err != nil || c.Name != "Fake" {
		t.Errorf("GetCustomer through the fake = %+v, %v", c, err)
	}
}
