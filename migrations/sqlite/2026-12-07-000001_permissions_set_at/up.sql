-- The same column as migrations/postgres, in SQLite's types.
ALTER TABLE members ADD COLUMN permissions_set_at TEXT;
