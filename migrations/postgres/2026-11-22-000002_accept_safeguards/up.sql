-- A banned user is never a member, whatever runs at the same time.
--
-- The accept statement reads the bans from its snapshot. A ban that commits after that snapshot
-- was taken, while the accept's member row is still uncommitted, would not see the row it has to
-- delete, and both would commit: a banned member. So the two meet on the server row: a ban locks
-- it before writing (`lock_server`), and this trigger locks it before looking. Whichever comes
-- second waits for the first to commit and then sees its work: the ban's DELETE finds the new
-- member, or the trigger finds the new ban (under READ COMMITTED each statement of a VOLATILE
-- function reads a fresh snapshot) and refuses the insert, and the accept runs again and
-- answers BANNED. The accept statement updates the same row for the member count anyway, so
-- taking its lock a moment earlier costs no extra waiting.
CREATE FUNCTION members_refuse_banned() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM servers WHERE id = NEW.server_id FOR NO KEY UPDATE;
    IF EXISTS (SELECT 1 FROM bans WHERE server_id = NEW.server_id AND user_id = NEW.user_id) THEN
        RAISE EXCEPTION 'user % is banned from server %', NEW.user_id, NEW.server_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'members_not_banned';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER members_not_banned BEFORE INSERT ON members
    FOR EACH ROW EXECUTE FUNCTION members_refuse_banned();

-- The accept statement's MemberJoin entry, written under a subtransaction (the EXCEPTION block):
-- a failed audit write is reported, by returning the error's message (NULL when written), which
-- the store logs and counts, but never fails the join it describes. On SQLite the same entry is
-- written under a savepoint, so both backends treat a failed audit write alike. Cancellations
-- (the statement timeout) are not caught: they end the whole statement, join included.
CREATE FUNCTION record_member_join(entry_id uuid, server uuid, actor uuid, details jsonb,
                                   at timestamptz)
RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO audit_entries (id, server_id, actor_id, action, target_type, target_id, details,
                               created_at)
    VALUES (entry_id, server, actor, 'MemberJoin', 'user', actor, details, at);
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLERRM;
END
$$;
