-- Permissions on join and invites for named users (contract section 11).
-- grant_permissions: the bits a join through the invite grants, as far as granted_by (whoever
-- set them last: the creator, or the editor of a PATCH that named them) still holds them when
-- the join happens; the accept statements check that, so an invite never hands out a bit its
-- granter has lost.
ALTER TABLE invites ADD COLUMN grant_permissions bigint NOT NULL DEFAULT 0;
ALTER TABLE invites ADD COLUMN granted_by uuid;
-- allowed_user_ids: a JSON array of the user ids who may accept the invite (as text, which is
-- how the accept statement tests membership: `@> jsonb_build_array(user_id::text)`); NULL
-- for an invite anyone may accept.
ALTER TABLE invites ADD COLUMN allowed_user_ids jsonb
    CHECK (allowed_user_ids IS NULL OR jsonb_typeof(allowed_user_ids) = 'array');
