-- +goose Up
CREATE TABLE customers (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      text        NOT NULL,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Emails are compared case-insensitively, so they are stored lower-case.
    CONSTRAINT customers_email_lower CHECK (email = lower(email))
);
CREATE UNIQUE INDEX customers_email_key ON customers (email);

CREATE TABLE products (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku         text    NOT NULL UNIQUE,
    name        text    NOT NULL,
    price_cents bigint  NOT NULL CHECK (price_cents >= 0),
    stock       integer NOT NULL DEFAULT 0 CHECK (stock >= 0)
);

-- +goose Down
DROP TABLE products;
DROP TABLE customers;
