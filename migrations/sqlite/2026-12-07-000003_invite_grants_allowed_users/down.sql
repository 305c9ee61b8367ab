ALTER TABLE invites DROP COLUMN allowed_user_ids;
ALTER TABLE invites DROP COLUMN granted_by;
ALTER TABLE invites DROP COLUMN grant_permissions;
