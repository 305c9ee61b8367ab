-- A banned user is never a member. SQLite runs one writer at a time, so the store's own check
-- already holds; the trigger makes it a rule of the database, as on PostgreSQL, where it closes
-- the race between a ban and a concurrent accept.
CREATE TRIGGER members_not_banned BEFORE INSERT ON members
WHEN EXISTS (SELECT 1 FROM bans WHERE server_id = NEW.server_id AND user_id = NEW.user_id)
BEGIN
    SELECT RAISE(ABORT, 'members_not_banned');
END;
