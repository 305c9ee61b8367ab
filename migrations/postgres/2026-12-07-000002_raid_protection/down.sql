DELETE FROM audit_entries WHERE actor_id IS NULL;
ALTER TABLE audit_entries ALTER COLUMN actor_id SET NOT NULL;
ALTER TABLE servers DROP CONSTRAINT servers_raid_protection_whole;
ALTER TABLE servers DROP COLUMN raid_window_joins;
ALTER TABLE servers DROP COLUMN raid_window_started_at;
ALTER TABLE servers DROP COLUMN raid_pause_seconds;
ALTER TABLE servers DROP COLUMN raid_window_seconds;
ALTER TABLE servers DROP COLUMN raid_joins;
