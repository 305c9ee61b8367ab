-- The same table as migrations/postgres, in SQLite's types.
CREATE TABLE gateway_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    connected_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX gateway_sessions_user_idx ON gateway_sessions (user_id, expires_at);
CREATE INDEX gateway_sessions_instance_idx ON gateway_sessions (instance_id, expires_at);
CREATE INDEX gateway_sessions_expires_idx ON gateway_sessions (expires_at);

CREATE INDEX members_temporary_idx ON members (joined_at) WHERE temporary;
