-- The ban/accept race is closed by lock order in the accept statement itself, not by a per-row
-- plpgsql trigger (issue 13). Every ban bumps `bans_version` on its server's row before it
-- deletes the member. The accept takes the invite's row lock (the use), then the server's (the
-- member count) with `bans_version` in the update's condition, which PostgreSQL re-checks on
-- the row's latest version once the lock is held, and only then inserts the member:
-- - the accept locked the server first: the ban waits for it to commit, and the ban's DELETE
--   (a later statement, a fresh snapshot) finds the new member;
-- - the ban committed first: the accept's count matches no row, its member insert fails for
--   want of a server, the statement rolls back whole, and runs again on a snapshot that holds
--   the ban (BANNED).
ALTER TABLE servers ADD COLUMN bans_version bigint NOT NULL DEFAULT 0;

DROP TRIGGER members_not_banned ON members;
DROP FUNCTION members_refuse_banned();
