-- A server's active invites are counted, not scanned, when an invite is created (issue 13). The
-- scan read every random invite the server had ever made and not revoked, so its cost grew with
-- the server's history rather than with the limit of 1000.
--
-- `active_invites` counts the server's random invites that are not revoked, not used up and not
-- lapsed. Expiry writes nothing, so it is folded in lazily: `invites_lapsed_through` is a mark
-- in time, and an invite whose `expires_at` is at or before it has lapsed. Each create, under
-- the server's row lock, looks up the invites that expired between the mark and its own time
-- (through `invites_server_expiry_idx`, so only those); when there are any, it subtracts them
-- and moves the mark.
-- Every other change to whether an invite counts (an insert, the use that exhausts it, a
-- revoke, an edit of its limits) moves the counter in the trigger below, in the same
-- transaction, under the server's row lock, and judged against the mark as it stands under that
-- lock: a revoke and a create that lapses the same invite cannot both subtract it.
--
-- The trigger's condition is evaluated by PostgreSQL itself: an accept calls the function only
-- for the use that exhausts its invite, and every other join pays nothing for it.
ALTER TABLE servers ADD COLUMN active_invites bigint NOT NULL DEFAULT 0;
ALTER TABLE servers ADD COLUMN invites_lapsed_through timestamptz;

CREATE INDEX invites_server_expiry_idx ON invites (server_id, expires_at)
    WHERE kind = 'random' AND revoked_at IS NULL;

CREATE FUNCTION invites_count_active() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    server uuid := COALESCE(NEW.server_id, OLD.server_id);
BEGIN
    -- One statement: the condition on the mark is read on the row's latest version, once its
    -- lock is held.
    UPDATE servers AS s
    SET active_invites = s.active_invites
        + CASE WHEN TG_OP <> 'DELETE'
                    AND NEW.kind = 'random' AND NEW.revoked_at IS NULL
                    AND (NEW.max_uses IS NULL OR NEW.uses < NEW.max_uses)
                    AND (NEW.expires_at IS NULL OR s.invites_lapsed_through IS NULL
                         OR NEW.expires_at > s.invites_lapsed_through)
               THEN 1 ELSE 0 END
        - CASE WHEN TG_OP <> 'INSERT'
                    AND OLD.kind = 'random' AND OLD.revoked_at IS NULL
                    AND (OLD.max_uses IS NULL OR OLD.uses < OLD.max_uses)
                    AND (OLD.expires_at IS NULL OR s.invites_lapsed_through IS NULL
                         OR OLD.expires_at > s.invites_lapsed_through)
               THEN 1 ELSE 0 END
    WHERE s.id = server;
    RETURN NULL;
END
$$;

CREATE TRIGGER invites_counted_on_insert AFTER INSERT ON invites
    FOR EACH ROW WHEN (NEW.kind = 'random')
    EXECUTE FUNCTION invites_count_active();
CREATE TRIGGER invites_counted_on_delete AFTER DELETE ON invites
    FOR EACH ROW WHEN (OLD.kind = 'random')
    EXECUTE FUNCTION invites_count_active();
-- An invite never moves between servers, and its kind never changes.
CREATE TRIGGER invites_counted_on_update AFTER UPDATE ON invites
    FOR EACH ROW WHEN (NEW.kind = 'random' AND (
        OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
        OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
        OR OLD.max_uses IS DISTINCT FROM NEW.max_uses
        OR (NEW.max_uses IS NOT NULL AND NEW.uses >= NEW.max_uses
            AND OLD.uses < NEW.max_uses)))
    EXECUTE FUNCTION invites_count_active();

-- Every invite that counts today; those expired lapse at the server's next create.
UPDATE servers AS s SET active_invites = (
    SELECT count(*) FROM invites AS i
    WHERE i.server_id = s.id AND i.kind = 'random' AND i.revoked_at IS NULL
      AND (i.max_uses IS NULL OR i.uses < i.max_uses));
