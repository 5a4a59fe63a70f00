-- The undo half of a golang-migrate pair: Schema skips it (it would fail).
DROP TABLE no_such_table;
