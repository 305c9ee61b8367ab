-- The same tables as migrations/postgres, in SQLite's types.

CREATE TABLE maintenance (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    enabled INTEGER NOT NULL,
    message TEXT CHECK (message IS NULL OR length(message) <= 500),
    ends_at TEXT,
    since TEXT NOT NULL
) STRICT;

CREATE TABLE idempotency_records (
    user_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL CHECK (status BETWEEN 200 AND 599),
    body TEXT NOT NULL,
    etag TEXT,
    created_at TEXT NOT NULL,
    CONSTRAINT idempotency_records_pkey PRIMARY KEY (user_id, idempotency_key)
) STRICT;
CREATE INDEX idempotency_records_created_idx ON idempotency_records (created_at);
