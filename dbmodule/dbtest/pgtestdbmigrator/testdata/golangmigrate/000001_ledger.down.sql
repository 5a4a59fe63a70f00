DROP TABLE entries;
DROP TABLE accounts;
DROP FUNCTION apply_entry();
