-- A server's active invites are counted, not scanned (see the PostgreSQL migration of the same
-- name for the scheme). SQLite runs one writer at a time, so the triggers need no lock order.
ALTER TABLE servers ADD COLUMN active_invites INTEGER NOT NULL DEFAULT 0;
ALTER TABLE servers ADD COLUMN invites_lapsed_through TEXT;

-- Not partial, unlike PostgreSQL's: SQLite matches a partial index only against literal
-- conditions, and the store binds the kind as a parameter.
CREATE INDEX invites_server_expiry_idx ON invites (server_id, expires_at);

CREATE TRIGGER invites_counted_on_insert AFTER INSERT ON invites
WHEN NEW.kind = 'random' AND NEW.revoked_at IS NULL
    AND (NEW.max_uses IS NULL OR NEW.uses < NEW.max_uses)
BEGIN
    UPDATE servers SET active_invites = active_invites + 1
    WHERE id = NEW.server_id
      AND (NEW.expires_at IS NULL OR invites_lapsed_through IS NULL
           OR NEW.expires_at > invites_lapsed_through);
END;

CREATE TRIGGER invites_counted_on_delete AFTER DELETE ON invites
WHEN OLD.kind = 'random' AND OLD.revoked_at IS NULL
    AND (OLD.max_uses IS NULL OR OLD.uses < OLD.max_uses)
BEGIN
    UPDATE servers SET active_invites = active_invites - 1
    WHERE id = OLD.server_id
      AND (OLD.expires_at IS NULL OR invites_lapsed_through IS NULL
           OR OLD.expires_at > invites_lapsed_through);
END;

CREATE TRIGGER invites_counted_on_update AFTER UPDATE ON invites
WHEN NEW.kind = 'random' AND (
    OLD.revoked_at IS NOT NEW.revoked_at
    OR OLD.expires_at IS NOT NEW.expires_at
    OR OLD.max_uses IS NOT NEW.max_uses
    OR (NEW.max_uses IS NOT NULL AND NEW.uses >= NEW.max_uses AND OLD.uses < NEW.max_uses))
BEGIN
    UPDATE servers SET active_invites = active_invites
        + CASE WHEN NEW.revoked_at IS NULL
                    AND (NEW.max_uses IS NULL OR NEW.uses < NEW.max_uses)
                    AND (NEW.expires_at IS NULL OR invites_lapsed_through IS NULL
                         OR NEW.expires_at > invites_lapsed_through)
               THEN 1 ELSE 0 END
        - CASE WHEN OLD.revoked_at IS NULL
                    AND (OLD.max_uses IS NULL OR OLD.uses < OLD.max_uses)
                    AND (OLD.expires_at IS NULL OR invites_lapsed_through IS NULL
                         OR OLD.expires_at > invites_lapsed_through)
               THEN 1 ELSE 0 END
    WHERE id = NEW.server_id;
END;

-- Every invite that counts today; those expired lapse at the server's next create.
UPDATE servers SET active_invites = (
    SELECT count(*) FROM invites AS i
    WHERE i.server_id = servers.id AND i.kind = 'random' AND i.revoked_at IS NULL
      AND (i.max_uses IS NULL OR i.uses < i.max_uses));
