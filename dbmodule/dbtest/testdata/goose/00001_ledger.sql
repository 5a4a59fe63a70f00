-- +goose Up
CREATE TABLE accounts (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name    text   NOT NULL,
    balance bigint NOT NULL DEFAULT 0
);
CREATE TABLE entries (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    amount     bigint NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION apply_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount WHERE id = NEW.account_id;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER entries_apply AFTER INSERT ON entries
    FOR EACH ROW EXECUTE FUNCTION apply_entry();

-- +goose Down
DROP TABLE entries;
DROP TABLE accounts;
DROP FUNCTION apply_entry();
