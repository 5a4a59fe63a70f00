-- name: CreateProduct :one
INSERT INTO products (sku, name, price_cents, stock)
VALUES ($1, $2, $3, $4)
RETURNING *;

-- name: GetProduct :one
SELECT * FROM products
WHERE id = $1;

-- name: ListProducts :many
SELECT * FROM products
ORDER BY sku
LIMIT $1;

-- TakeStock removes quantity from a product's stock, if that much is left.
-- name: TakeStock :one
UPDATE products
SET stock = stock - @quantity::integer
WHERE id = @id AND stock >= @quantity::integer
RETURNING stock;
