-- The same tables as migrations/postgres, in SQLite's types. SQLite runs one writer at a time,
-- so `seq` is drawn in commit order and readers need no horizon.

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    audience TEXT NOT NULL CHECK (audience IN ('members', 'invite_managers')),
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX events_server_seq_idx ON events (server_id, seq);

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    event_types TEXT NOT NULL CHECK (json_type(event_types) = 'array'),
    secret TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    failing_since TEXT,
    next_attempt_at TEXT,
    lease_owner TEXT,
    lease_until TEXT,
    disabled_at TEXT,
    disabled_reason TEXT
) STRICT;
CREATE INDEX webhooks_server_idx ON webhooks (server_id, created_at);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
