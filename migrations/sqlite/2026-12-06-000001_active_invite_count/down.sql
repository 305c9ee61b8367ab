DROP TRIGGER invites_counted_on_update;
DROP TRIGGER invites_counted_on_delete;
DROP TRIGGER invites_counted_on_insert;
DROP INDEX invites_server_expiry_idx;
ALTER TABLE servers DROP COLUMN invites_lapsed_through;
ALTER TABLE servers DROP COLUMN active_invites;
