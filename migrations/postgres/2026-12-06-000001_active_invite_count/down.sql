DROP TRIGGER invites_counted_on_update ON invites;
DROP TRIGGER invites_counted_on_delete ON invites;
DROP TRIGGER invites_counted_on_insert ON invites;
DROP FUNCTION invites_count_active();
DROP INDEX invites_server_expiry_idx;
ALTER TABLE servers DROP COLUMN invites_lapsed_through;
ALTER TABLE servers DROP COLUMN active_invites;
