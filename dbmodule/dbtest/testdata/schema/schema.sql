-- A plain schema, as sqlc reads it: no migration tool's annotations.
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

-- Semicolons inside dollar quotes, and a nested tag, are the server's to parse.
CREATE FUNCTION apply_entry() RETURNS trigger LANGUAGE plpgsql AS $body$
DECLARE
    note text := $note$ends; here; $$ not $note$;
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount WHERE id = NEW.account_id;
    RETURN NEW;
END;
$body$;

CREATE TRIGGER entries_apply AFTER INSERT ON entries
    FOR EACH ROW EXECUTE FUNCTION apply_entry();
