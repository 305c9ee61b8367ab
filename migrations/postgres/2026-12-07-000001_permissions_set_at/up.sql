-- When a member's permissions were last set (PATCH /servers/{id}/members/{user_id}): undoing
-- the invite they joined through keeps them (contract section 11, "Undo a leaked link"). NULL
-- for a membership nobody has set permissions on since the join; a new membership, after a
-- leave and a rejoin, starts again from NULL.
ALTER TABLE members ADD COLUMN permissions_set_at timestamptz;
