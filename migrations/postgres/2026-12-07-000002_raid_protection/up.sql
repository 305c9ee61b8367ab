-- Raid protection (contract section 11): the server's setting, and its current window of joins,
-- on the server's row, which every join already updates (its member count) under the row's
-- lock: counting a join writes two more columns of a row being written anyway, and racing
-- joins are counted one at a time. The three settings are all set or all NULL (off).
-- `raid_window_started_at` is when the open window started (NULL: none is open), and
-- `raid_window_joins` how many it has admitted (see invite_core::raid for the rule).
ALTER TABLE servers ADD COLUMN raid_joins bigint;
ALTER TABLE servers ADD COLUMN raid_window_seconds bigint;
ALTER TABLE servers ADD COLUMN raid_pause_seconds bigint;
ALTER TABLE servers ADD COLUMN raid_window_started_at timestamptz;
ALTER TABLE servers ADD COLUMN raid_window_joins bigint NOT NULL DEFAULT 0;
ALTER TABLE servers ADD CONSTRAINT servers_raid_protection_whole CHECK (
    (raid_joins IS NULL) = (raid_window_seconds IS NULL)
    AND (raid_joins IS NULL) = (raid_pause_seconds IS NULL));

-- A pause that raid protection sets has no actor: nobody did it.
ALTER TABLE audit_entries ALTER COLUMN actor_id DROP NOT NULL;
