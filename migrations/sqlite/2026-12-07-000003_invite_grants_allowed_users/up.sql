-- The same columns as migrations/postgres, in SQLite's types.
ALTER TABLE invites ADD COLUMN grant_permissions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invites ADD COLUMN granted_by TEXT;
ALTER TABLE invites ADD COLUMN allowed_user_ids TEXT
    CHECK (allowed_user_ids IS NULL OR json_type(allowed_user_ids) = 'array');
