-- name: CreateCustomer :one
INSERT INTO customers (email, name)
VALUES (lower(@email), @name)
RETURNING *;

-- name: GetCustomer :one
SELECT * FROM customers
WHERE id = $1;

-- name: GetCustomerByEmail :one
SELECT * FROM customers
WHERE email = lower(@email);
