ALTER TABLE servers DROP COLUMN bans_version;
