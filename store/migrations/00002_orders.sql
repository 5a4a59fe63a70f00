-- +goose Up
CREATE TABLE orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint      NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    product_id  bigint      NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    quantity    integer     NOT NULL CHECK (quantity > 0),
    total_cents bigint      NOT NULL CHECK (total_cents >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- A customer's orders, newest first.
CREATE INDEX orders_customer_created_idx ON orders (customer_id, created_at DESC);
CREATE INDEX orders_product_idx ON orders (product_id);

-- +goose Down
DROP TABLE orders;
