-- The same columns as migrations/postgres, in SQLite's types (SQLite cannot add a table
-- constraint to an existing table; the store writes the three settings together).
ALTER TABLE servers ADD COLUMN raid_joins INTEGER;
ALTER TABLE servers ADD COLUMN raid_window_seconds INTEGER;
ALTER TABLE servers ADD COLUMN raid_pause_seconds INTEGER;
ALTER TABLE servers ADD COLUMN raid_window_started_at TEXT;
ALTER TABLE servers ADD COLUMN raid_window_joins INTEGER NOT NULL DEFAULT 0;

-- A pause that raid protection sets has no actor. SQLite cannot drop a NOT NULL, so the table
-- is built again, columns in the same order.
CREATE TABLE audit_entries_new (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    actor_id TEXT,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
) STRICT;
INSERT INTO audit_entries_new (id, server_id, actor_id, action, target_type, target_id, details,
                               created_at)
SELECT id, server_id, actor_id, action, target_type, target_id, details, created_at
FROM audit_entries;
DROP TABLE audit_entries;
ALTER TABLE audit_entries_new RENAME TO audit_entries;
CREATE INDEX audit_entries_server_created_idx ON audit_entries (server_id, created_at DESC, id DESC);
