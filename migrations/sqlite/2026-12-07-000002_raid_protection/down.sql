CREATE TABLE audit_entries_old (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
) STRICT;
INSERT INTO audit_entries_old (id, server_id, actor_id, action, target_type, target_id, details,
                               created_at)
SELECT id, server_id, actor_id, action, target_type, target_id, details, created_at
FROM audit_entries WHERE actor_id IS NOT NULL;
DROP TABLE audit_entries;
ALTER TABLE audit_entries_old RENAME TO audit_entries;
CREATE INDEX audit_entries_server_created_idx ON audit_entries (server_id, created_at DESC, id DESC);

ALTER TABLE servers DROP COLUMN raid_window_joins;
ALTER TABLE servers DROP COLUMN raid_window_started_at;
ALTER TABLE servers DROP COLUMN raid_pause_seconds;
ALTER TABLE servers DROP COLUMN raid_window_seconds;
ALTER TABLE servers DROP COLUMN raid_joins;
