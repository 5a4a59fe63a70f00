-- name: CreateOrder :one
INSERT INTO orders (customer_id, product_id, quantity, total_cents)
VALUES ($1, $2, $3, $4)
RETURNING *;

-- name: ListCustomerOrders :many
SELECT * FROM orders
WHERE customer_id = $1
ORDER BY created_at DESC, id DESC;

-- name: CustomerSpend :one
SELECT coalesce(sum(total_cents), 0)::bigint AS total_cents
FROM orders
WHERE customer_id = $1;
